export { DataService, readAggregateRow, readAggregateRows, Row, tupleKey } from './data-service.js';
export type { AggregateResult, Connection, CountAnswer, Coverage, GroupResult, MutationResult } from './data-service.js';
export { RelationshipLoaders } from './relationship-loaders.js';
