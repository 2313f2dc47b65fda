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
