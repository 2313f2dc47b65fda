export { aggregateRowReader, aggregateRowsReader, DataService, Row, tupleKey } from './data-service.js';
export type { AggregateResult, Connection, CountAnswer, Coverage, GroupResult, MutationResult, SelectionReader } from './data-service.js';
export { RelationshipLoaders } from './relationship-loaders.js';
