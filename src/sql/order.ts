/** Hasura's six order directions. Plain asc/desc sort nulls as PostgreSQL does (last / first). */
export type OrderDirection = 'asc' | 'asc_nulls_first' | 'asc_nulls_last' | 'desc' | 'desc_nulls_first' | 'desc_nulls_last';

export const orderDirections: readonly OrderDirection[] = ['asc', 'asc_nulls_first', 'asc_nulls_last', 'desc', 'desc_nulls_first', 'desc_nulls_last'];

const sqlOf: Record<OrderDirection, string> = {
  asc: 'ASC NULLS LAST',
  asc_nulls_first: 'ASC NULLS FIRST',
  asc_nulls_last: 'ASC NULLS LAST',
  desc: 'DESC NULLS FIRST',
  desc_nulls_first: 'DESC NULLS FIRST',
  desc_nulls_last: 'DESC NULLS LAST',
};

export function orderSql(direction: OrderDirection): string {
  return sqlOf[direction];
}
