export { crashPoint } from './crash-points.js';
export type { HandleCacheStats } from './handle-cache.js';
export { parseInstanceId } from './instance-id.js';
export type { InstanceId } from './instance-id.js';
export { InstanceService, instanceReadError, instanceSettings, later } from './instance-service.js';
export type { InstanceServiceOptions, PreparedReads, ReadGeneration, RecoveryReport, SnapshotsAhead } from './instance-service.js';
export { labelLimits, parseLabels } from './labels.js';
export { ScopedInstances, unrestricted } from './scoped-instances.js';
export type { InstanceAccess, InstanceScope, PreparedReadsAccess, Selection } from './scoped-instances.js';
