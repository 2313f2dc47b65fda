export { buildDataModel } from './data-model.js';
export type { ColumnModel, ConstraintModel, DataModel, RelationshipModel, TableModel } from './data-model.js';
export { decodeCursor, encodeCursor, orderFingerprint } from './cursor.js';
export { inlineLiterals } from './literals.js';
export { deleteRows, insertRow, updateRows } from './mutations.js';
export type { OnConflict } from './mutations.js';
export {
  exactRow,
  needsExactRow,
  isComparable,
  isSummable,
  keyPredicates,
  keysetAfter,
  keysetBefore,
  orderTerms,
  pageArgs,
  pageSize,
  selectAggregate,
  selectByKeys,
  selectCount,
  selectDistinct,
  groupingKeys,
  selectGroups,
  selectRows,
  TableScope,
} from './plan.js';
export type { AggregateLayout, AggregateQuery, AggregateNeeds, BoolExp, GroupsArgs, ListArgs, OrderBy, OrderTerm, Page, SqlText } from './plan.js';
export { compareDirected, compareSqlValues } from './compare.js';
export { toGraphQL, toSql } from './values.js';
export { AggregateMerge, mergeAggregateRows, TopK } from './merge.js';
