export { instanceStates } from './catalog.js';
export type {
  Catalog,
  InstanceFilter,
  InstanceOrderBy,
  InstanceOrderColumn,
  InstanceQuery,
  InstanceRecord,
  InstanceState,
  Labels,
  LabelsFilter,
  Operation,
  OperationKind,
  RecordedMigration,
} from './catalog.js';
export { LibsqlCatalog } from './libsql-catalog.js';
export type { LibsqlCatalogOptions } from './libsql-catalog.js';
export { activeRolloutStates, RolloutStore, rolloutStates } from './rollout-store.js';
export type { RolloutCounts, RolloutFailure, RolloutItem, RolloutKind, RolloutRecord, RolloutResult, RolloutState, RolloutStrategy } from './rollout-store.js';
export { ArchiveRecords } from './archive-records.js';
export type { ArchiveRecord } from './archive-records.js';
