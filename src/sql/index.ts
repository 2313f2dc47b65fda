export { and, compileComparison, jsonArray, likeToGlob, quoteIdentifier } from './comparison.js';
export type { ComparisonExp } from './comparison.js';
export { orderDirections, orderSql } from './order.js';
export type { OrderDirection } from './order.js';
