export { DataService, Row, tupleKey } from './data-service.js';
export type { AggregateResult, Connection, Coverage, GroupResult, MutationResult } from './data-service.js';
export { RelationshipLoaders } from './relationship-loaders.js';
