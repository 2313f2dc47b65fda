import { FleetqlError } from '../errors.js';
import type { InstanceSchema, TableInfo } from '../migrations/index.js';
import { and, compileComparison, jsonArray, orderSql, quoteIdentifier, type ComparisonExp, type OrderDirection } from '../sql/index.js';
import type { ColumnModel, DataModel, TableModel } from './data-model.js';
import { toSql } from './values.js';

/** Page sizes of row lists, connections, groups and array relationships. */
export const pageSize = { default: 100, max: 1000 } as const;
/** Deepest `_and/_or/_not`/relationship nesting a filter may have. */
export const maxFilterDepth = 128;

export type BoolExp = Record<string, unknown>;
export type OrderBy = Record<string, OrderDirection | null | undefined>;

export interface SqlText {
  sql: string;
  params: unknown[];
}

/**
 * One table as one instance has it: the head model plus what exists at the instance's version.
 * Columns the instance lacks read as NULL; a table it lacks has no rows.
 */
export class TableScope {
  readonly model: TableModel;
  readonly info: TableInfo | undefined;
  readonly data: DataModel;
  readonly schema: InstanceSchema;

  constructor(data: DataModel, schema: InstanceSchema, model: TableModel) {
    this.data = data;
    this.schema = schema;
    this.model = model;
    this.info = schema.tables.get(model.sql);
  }

  get exists(): boolean {
    return this.info !== undefined;
  }

  has(column: ColumnModel): boolean {
    if (this.info === undefined) return false;
    return column.sql === 'rowid' && this.model.rowidKey ? this.info.rowidKey : this.info.column(column.sql) !== undefined;
  }

  /** Whether the column can hold no NULL in this instance (NOT NULL, or the rowid key). */
  notNull(column: ColumnModel): boolean {
    if (this.info === undefined) return false;
    if (column.sql === 'rowid' && this.model.rowidKey) return this.info.rowidKey;
    return this.info.column(column.sql)?.notNull ?? false;
  }

  /** The SQL expression of a column under `alias`, or NULL where this instance lacks it. */
  expr(alias: string, column: ColumnModel): string {
    if (!this.has(column)) return 'NULL';
    return `${alias}.${column.sql === 'rowid' && this.model.rowidKey ? 'rowid' : quoteIdentifier(column.sql)}`;
  }

  related(table: string): TableScope {
    const model = this.data.table(table);
    if (model === undefined) throw new Error(`unknown table ${table}`);
    return new TableScope(this.data, this.schema, model);
  }

  /** What a row of this table selects, in `rowColumns` order. */
  selectList(alias: string): string {
    return this.rowColumns.map((column) => this.expr(alias, column)).join(', ');
  }

  /** Every column a row carries: the table's columns, then the synthetic rowid key if any. */
  get rowColumns(): readonly ColumnModel[] {
    return this.model.rowidKey ? [...this.model.columns, ...this.model.key] : this.model.columns;
  }

  /** For writes: every named column must exist at this instance's version. */
  requireColumns(columns: Iterable<ColumnModel>): void {
    if (!this.exists) throw behind(this, `table ${this.model.name}`);
    for (const column of columns) if (!this.has(column)) throw behind(this, `column ${this.model.name}.${column.field}`);
  }
}

function behind(scope: TableScope, what: string): FleetqlError {
  return new FleetqlError('SCHEMA_VERSION_BEHIND', `this instance is at schema version ${scope.schema.version} and has no ${what} yet (head is ${scope.data.head})`, {
    extensions: { schema_version: scope.schema.version, head: scope.data.head },
  });
}

/** Comparison values converted to what SQLite stores for the column's kind. */
function bindComparison(column: ColumnModel, exp: Record<string, unknown>): ComparisonExp {
  const converted: Record<string, unknown> = {};
  for (const [op, value] of Object.entries(exp)) {
    if (value === undefined) continue;
    if (op === '_is_null' || op.endsWith('like') || value === null) converted[op] = value;
    else if (Array.isArray(value)) {
      converted[op] = value.map((v) => {
        if (v === null) throw new FleetqlError('INVALID_ARGUMENT', `${op} lists do not take null; use _is_null`);
        return toSql(column.kind, v, column.field);
      });
    } else converted[op] = toSql(column.kind, value, column.field);
  }
  return converted as ComparisonExp;
}

/** A unique alias per nesting level of a query. */
class Aliases {
  #next = 0;
  take(): string {
    return `t${this.#next++}`;
  }
}

/** Compiles a `t_bool_exp` over `scope` as `alias` into a predicate; values go to `params`. */
export function compileWhere(scope: TableScope, alias: string, where: BoolExp | null | undefined, params: unknown[], aliases = new Aliases(), depth = 0): string {
  if (where === null || where === undefined) return '1';
  if (depth > maxFilterDepth) throw new FleetqlError('QUERY_TOO_COSTLY', `filters may nest at most ${maxFilterDepth} levels`);
  const predicates: string[] = [];
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) continue;
    if (value === null) throw new FleetqlError('INVALID_ARGUMENT', `${key} does not take null`);
    if (key === '_and' || key === '_or') {
      const parts = (value as BoolExp[]).map((part) => compileWhere(scope, alias, part, params, aliases, depth + 1));
      // SQLite's parser stack is shallow: a list of one adds no parentheses.
      predicates.push(key === '_and' ? and(parts) : parts.length === 0 ? '0' : parts.length === 1 ? parts[0]! : parts.map((p) => `(${p})`).join(' OR '));
      continue;
    }
    if (key === '_not') {
      predicates.push(`NOT (${compileWhere(scope, alias, value as BoolExp, params, aliases, depth + 1)})`);
      continue;
    }
    const column = scope.model.byField(key);
    if (column !== undefined) {
      predicates.push(...compileComparison(scope.expr(alias, column), bindComparison(column, value as Record<string, unknown>), params));
      continue;
    }
    const relationship = scope.model.relationships.find((r) => r.field === key);
    if (relationship === undefined) throw new FleetqlError('INVALID_ARGUMENT', `unknown filter field ${key}`);
    const target = scope.related(relationship.target);
    if (!target.exists || !scope.exists) {
      predicates.push('0');
      continue;
    }
    const inner = aliases.take();
    const join = relationship.columns.map((local, i) => {
      const localColumn = scope.model.column(local)!;
      const targetColumn = target.model.column(relationship.targetColumns[i]!)!;
      return `${target.expr(inner, targetColumn)} = ${scope.expr(alias, localColumn)}`;
    });
    const nested = compileWhere(target, inner, value as BoolExp, params, aliases, depth + 1);
    predicates.push(`EXISTS (SELECT 1 FROM ${quoteIdentifier(target.model.sql)} AS ${inner} WHERE ${and([...join, nested])})`);
  }
  return and(predicates);
}

export interface OrderTerm {
  column: ColumnModel;
  direction: OrderDirection;
}

/** `order_by` elements (one column each) followed by the key columns ascending, for a total order. */
export function orderTerms(model: TableModel, orderBy: readonly OrderBy[] | null | undefined): OrderTerm[] {
  const terms: OrderTerm[] = [];
  for (const element of orderBy ?? []) {
    const entries = Object.entries(element).filter(([, direction]) => direction !== undefined && direction !== null);
    if (entries.length !== 1) throw new FleetqlError('INVALID_ARGUMENT', 'each order_by element must name exactly one column');
    const [field, direction] = entries[0]!;
    const column = model.byField(field);
    if (column === undefined) throw new FleetqlError('INVALID_ARGUMENT', `cannot order by ${field}`);
    terms.push({ column, direction: direction! });
  }
  for (const column of model.key) if (!terms.some((t) => t.column === column)) terms.push({ column, direction: 'asc' });
  return terms;
}

export function orderClause(scope: TableScope, alias: string, terms: readonly OrderTerm[]): string {
  return terms.map((term) => `${scope.expr(alias, term.column)} ${orderSql(term.direction)}`).join(', ');
}

export function pageArgs(limit: number | null | undefined, offset: number | null | undefined, what = 'limit'): { limit: number; offset: number } {
  const resolvedLimit = limit ?? pageSize.default;
  if (!Number.isInteger(resolvedLimit) || resolvedLimit < 0 || resolvedLimit > pageSize.max) {
    throw new FleetqlError('INVALID_ARGUMENT', `${what} must be from 0 to ${pageSize.max}`);
  }
  const resolvedOffset = offset ?? 0;
  if (!Number.isInteger(resolvedOffset) || resolvedOffset < 0) throw new FleetqlError('INVALID_ARGUMENT', 'offset must not be negative');
  return { limit: resolvedLimit, offset: resolvedOffset };
}

export interface ListArgs {
  where?: BoolExp | null | undefined;
  order_by?: readonly OrderBy[] | null | undefined;
  limit?: number | null | undefined;
  offset?: number | null | undefined;
}

export interface Page {
  limit: number;
  offset: number;
}

/**
 * SELECT of rows (columns in `rowColumns` order). `extra` predicates are ANDed in (keysets, keys).
 * The page is taken as given: callers validate what a client asked with `pageArgs`, and the fleet
 * path asks each instance for offset + limit rows.
 */
export function selectRows(scope: TableScope, where: BoolExp | null | undefined, orderBy: readonly OrderBy[] | null | undefined, page: Page, extra: (alias: string, params: unknown[]) => string[] = () => []): SqlText {
  const params: unknown[] = [];
  const alias = 't';
  const aliases = new Aliases();
  const predicate = and([compileWhere(scope, alias, where, params, aliases), ...extra(alias, params)]);
  params.push(page.limit, page.offset);
  return {
    sql: `SELECT ${scope.selectList(alias)} FROM ${quoteIdentifier(scope.model.sql)} AS ${alias} WHERE ${predicate} ORDER BY ${orderClause(scope, alias, orderTerms(scope.model, orderBy))} LIMIT ? OFFSET ?`,
    params,
  };
}

/** Predicates matching one key (by_pk). */
export function keyPredicates(scope: TableScope, key: Record<string, unknown>): (alias: string, params: unknown[]) => string[] {
  return (alias, params) =>
    scope.model.key.map((column) => {
      const value = key[column.field];
      if (value === undefined || value === null) throw new FleetqlError('INVALID_ARGUMENT', `${column.field} is required`);
      params.push(toSql(column.kind, value, column.field));
      return `${scope.expr(alias, column)} = ?`;
    });
}

const summable = new Set(['integer', 'real', 'numeric']);
const comparable = new Set(['integer', 'real', 'numeric', 'text', 'datetime']);

export function isSummable(column: ColumnModel): boolean {
  return summable.has(column.kind);
}
export function isComparable(column: ColumnModel): boolean {
  return comparable.has(column.kind);
}

export type AggregateTermKind = 'count' | 'count_col' | 'sum_int' | 'sum' | 'avg' | 'min' | 'max';

/**
 * The aggregate terms of one aggregate request, in order: count(*), then per column count, sum,
 * avg (summable) and min, max (comparable) — only those the request reads (see `AggregateNeeds`).
 * Every term merges exactly across instances (see merge.ts).
 */
export interface AggregateLayout {
  terms: string[];
  kinds: Array<{ kind: AggregateTermKind; column?: ColumnModel }>;
  /** Index in `terms` of each named value, e.g. "count", "sum:cpus". */
  index: Map<string, number>;
  /**
   * The same select list with each INTEGER sum as its high and low 32-bit halves (two terms), or
   * undefined when there is no INTEGER sum. SQLite's sum() of 64-bit integers fails with "integer
   * overflow"; the halves cannot overflow and hi·2³² + lo is exact in bigint. They cost a fan-out
   * about 5% more than plain sums, so they are read only when the plain sums fail (see exactRow).
   */
  exactTerms: string[] | undefined;
}

/**
 * Which aggregate functions a request reads, by column: computing only those keeps the scan cheap
 * (every min/max of every column costs a fleet fan-out several times the one count it asked for).
 * Absent: every term (what a group's aggregate computes).
 */
export type AggregateNeeds = (fn: 'sum' | 'avg' | 'min' | 'max', column: ColumnModel) => boolean;

export function aggregateLayout(scope: TableScope, alias: string, needs: AggregateNeeds = () => true): AggregateLayout {
  const layout: AggregateLayout = { terms: ['count(*)'], kinds: [{ kind: 'count' }], index: new Map([['count', 0]]), exactTerms: undefined };
  const exact = ['count(*)'];
  const add = (kind: AggregateTermKind, column: ColumnModel, term: string, exactTerms: string[] = [term]) => {
    layout.index.set(`${kind === 'sum_int' ? 'sum' : kind}:${column.sql}`, layout.terms.length);
    layout.terms.push(term);
    layout.kinds.push({ kind, column });
    exact.push(...exactTerms);
  };
  for (const column of scope.model.columns) {
    const expr = scope.expr(alias, column);
    if (isSummable(column)) {
      // A merged avg is the merged sum over the merged count, so avg needs both.
      const avg = needs('avg', column);
      if (avg) add('count_col', column, `count(${expr})`);
      if (avg || needs('sum', column)) {
        if (column.kind === 'integer') add('sum_int', column, `sum(${expr})`, [`sum(${expr} >> 32)`, `sum(${expr} & 4294967295)`]);
        else add('sum', column, `sum(${expr})`);
      }
      if (avg) add('avg', column, `avg(${expr})`);
    }
    if (isComparable(column)) {
      if (needs('min', column)) add('min', column, `min(${expr})`);
      if (needs('max', column)) add('max', column, `max(${expr})`);
    }
  }
  if (layout.kinds.some(({ kind }) => kind === 'sum_int')) layout.exactTerms = exact;
  return layout;
}

/**
 * Whether a row of the plain terms (after `offset` key values) must be read again with the exact
 * halves: an INTEGER sum came back as a float, because the column holds a non-integer value (an
 * INTEGER column of a table that is not STRICT may). The halves truncate such values, as ever.
 */
export function needsExactRow(layout: AggregateLayout, row: readonly unknown[], offset = 0): boolean {
  const { kinds } = layout;
  for (let i = 0; i < kinds.length; i++) if (kinds[i]!.kind === 'sum_int' && typeof row[offset + i] === 'number') return true;
  return false;
}

/** A row of the exact terms (after `offset` key values) in the layout's shape: each INTEGER sum as one exact bigint. */
export function exactRow(layout: AggregateLayout, row: readonly unknown[], offset = 0): unknown[] {
  const values = row.slice(0, offset);
  let at = offset;
  for (const { kind } of layout.kinds) {
    if (kind === 'sum_int') {
      values.push(integerSum(row[at], row[at + 1]));
      at += 2;
    } else values.push(row[at++]);
  }
  return values;
}

/** The exact sum of an INTEGER column from its two partial sums; null when there were no values. */
function integerSum(hi: unknown, lo: unknown): bigint | null {
  if (hi === null || hi === undefined || lo === null || lo === undefined) return null;
  return BigInt(hi as bigint) * 4294967296n + BigInt(lo as bigint);
}

/** An aggregate select, and the same select with exact INTEGER sums (see AggregateLayout.exactTerms). */
export interface AggregateQuery extends SqlText {
  layout: AggregateLayout;
  /** The select with `exactTerms`; undefined when there is no INTEGER sum. */
  exact: SqlText | undefined;
  /** Values before the aggregate terms in each row (a group's keys). */
  offset: number;
}

export function selectAggregate(scope: TableScope, where: BoolExp | null | undefined, needs?: AggregateNeeds): AggregateQuery {
  const params: unknown[] = [];
  const alias = 't';
  const layout = aggregateLayout(scope, alias, needs);
  const predicate = compileWhere(scope, alias, where, params);
  const select = (terms: string[]) => `SELECT ${terms.join(', ')} FROM ${quoteIdentifier(scope.model.sql)} AS ${alias} WHERE ${predicate}`;
  return { sql: select(layout.terms), params, layout, exact: layout.exactTerms && { sql: select(layout.exactTerms), params }, offset: 0 };
}

/** count(columns, distinct): rows where every named column is non-null, optionally distinct tuples. */
export function selectCount(scope: TableScope, where: BoolExp | null | undefined, columns: readonly ColumnModel[], distinct: boolean, extra: (alias: string, params: unknown[]) => string[] = () => []): SqlText {
  const params: unknown[] = [];
  const alias = 't';
  const predicates = [compileWhere(scope, alias, where, params), ...extra(alias, params), ...columns.map((c) => `${scope.expr(alias, c)} IS NOT NULL`)];
  const from = `FROM ${quoteIdentifier(scope.model.sql)} AS ${alias} WHERE ${and(predicates)}`;
  if (!distinct || columns.length === 0) return { sql: `SELECT count(*) ${from}`, params };
  return { sql: `SELECT count(*) FROM (SELECT DISTINCT ${columns.map((c) => scope.expr(alias, c)).join(', ')} ${from})`, params };
}

/** The columns a `t_groups` call groups by. */
export function groupingKeys(model: TableModel, fields: readonly string[]): ColumnModel[] {
  const keys = fields.map((field) => {
    const column = model.byField(field);
    if (column === undefined) throw new FleetqlError('INVALID_ARGUMENT', `cannot group by ${field}`);
    return column;
  });
  if (keys.length === 0) throw new FleetqlError('INVALID_ARGUMENT', 'grouping_keys must name at least one column');
  return keys;
}

/** The distinct non-null tuples of `columns` (a fleet merges them for an exact count(distinct)). */
export function selectDistinct(scope: TableScope, where: BoolExp | null | undefined, columns: readonly ColumnModel[], extra: (alias: string, params: unknown[]) => string[] = () => []): SqlText {
  const params: unknown[] = [];
  const alias = 't';
  const predicates = [compileWhere(scope, alias, where, params), ...extra(alias, params), ...columns.map((c) => `${scope.expr(alias, c)} IS NOT NULL`)];
  return { sql: `SELECT DISTINCT ${columns.map((c) => scope.expr(alias, c)).join(', ')} FROM ${quoteIdentifier(scope.model.sql)} AS ${alias} WHERE ${and(predicates)}`, params };
}

export interface GroupsArgs {
  grouping_keys: readonly string[];
  where?: BoolExp | null | undefined;
  order_by?: readonly Record<string, OrderDirection | null | undefined>[] | null | undefined;
  limit?: number | null | undefined;
}

/**
 * SELECT key columns then the aggregate terms, grouped by the keys; ordered by keys or `_count`.
 * `limit` is taken as given (null: every group, as the fleet needs before it merges).
 */
export function selectGroups(scope: TableScope, args: GroupsArgs, limit: number | null): AggregateQuery & { keys: ColumnModel[] } {
  const keys = groupingKeys(scope.model, args.grouping_keys);
  const params: unknown[] = [];
  const alias = 't';
  const layout = aggregateLayout(scope, alias);
  const predicate = compileWhere(scope, alias, args.where, params);
  const keyExprs = keys.map((k) => scope.expr(alias, k));
  const order: string[] = [];
  for (const element of args.order_by ?? []) {
    const entries = Object.entries(element).filter(([, d]) => d !== undefined && d !== null);
    if (entries.length !== 1) throw new FleetqlError('INVALID_ARGUMENT', 'each order_by element must name exactly one column');
    const [field, direction] = entries[0]!;
    if (field === '_count') order.push(`count(*) ${orderSql(direction!)}`);
    else {
      const index = keys.findIndex((k) => k.field === field);
      if (index < 0) throw new FleetqlError('INVALID_ARGUMENT', `groups can be ordered only by grouping keys or _count, not ${field}`);
      order.push(`${keyExprs[index]} ${orderSql(direction!)}`);
    }
  }
  for (const expr of keyExprs) order.push(`${expr} ASC NULLS LAST`);
  params.push(limit ?? -1);
  const select = (terms: string[]) =>
    `SELECT ${[...keyExprs, ...terms].join(', ')} FROM ${quoteIdentifier(scope.model.sql)} AS ${alias} WHERE ${predicate} GROUP BY ${keyExprs.join(', ')} ORDER BY ${order.join(', ')} LIMIT ?`;
  return { sql: select(layout.terms), params, keys, layout, exact: layout.exactTerms && { sql: select(layout.exactTerms), params }, offset: keys.length };
}

/**
 * Rows after a cursor position in the total order `terms`: an OR-chain that handles NULLs. With
 * `orEqual`, rows equal to the position on every term come too (the fleet uses it for instances
 * whose id sorts after the cursor's).
 */
export function keysetAfter(scope: TableScope, terms: readonly OrderTerm[], values: readonly unknown[], orEqual = false): (alias: string, params: unknown[]) => string[] {
  return (alias, params) => {
    const alternatives: string[] = [];
    if (orEqual) {
      alternatives.push(
        and(
          terms.map((term, j) => {
            params.push(values[j] ?? null);
            return `${scope.expr(alias, term.column)} IS ?`;
          }),
        ),
      );
    }
    for (let i = 0; i < terms.length; i++) {
      const parts: string[] = [];
      for (let j = 0; j < i; j++) {
        params.push(values[j] ?? null);
        parts.push(`${scope.expr(alias, terms[j]!.column)} IS ?`);
      }
      const term = terms[i]!;
      const expr = scope.expr(alias, term.column);
      const value = values[i] ?? null;
      const nullsFirst = term.direction === 'asc_nulls_first' || term.direction === 'desc' || term.direction === 'desc_nulls_first';
      const ascending = term.direction.startsWith('asc');
      if (value === null) parts.push(nullsFirst ? `${expr} IS NOT NULL` : '0');
      else {
        params.push(value);
        const beyond = `${expr} ${ascending ? '>' : '<'} ?`;
        // Without the NULL alternative SQLite can search the column's index for the range.
        parts.push(nullsFirst || scope.notNull(term.column) ? beyond : `(${beyond} OR ${expr} IS NULL)`);
      }
      alternatives.push(and(parts));
    }
    return [alternatives.map((a) => `(${a})`).join(' OR ') || '0'];
  };
}

const reversed: Record<OrderDirection, OrderDirection> = {
  asc: 'desc',
  asc_nulls_first: 'desc_nulls_last',
  asc_nulls_last: 'desc_nulls_first',
  desc: 'asc',
  desc_nulls_first: 'asc_nulls_last',
  desc_nulls_last: 'asc_nulls_first',
};

/**
 * Rows before a position in the order `terms` (the mirror of `keysetAfter`, same `orEqual`): a
 * fleet top-k asks the instances it has not read yet only for rows that can still enter it.
 */
export function keysetBefore(scope: TableScope, terms: readonly OrderTerm[], values: readonly unknown[], orEqual = false): (alias: string, params: unknown[]) => string[] {
  return keysetAfter(scope, terms.map((term) => ({ column: term.column, direction: reversed[term.direction] })), values, orEqual);
}

/**
 * Rows of `scope` whose `columns` match one of `keyTuples` (a batch of relationship lookups), each
 * row preceded by its match columns; `args` filter, order and page within each key (window function).
 */
export function selectByKeys(scope: TableScope, columns: readonly ColumnModel[], keyTuples: readonly (readonly unknown[])[], args: ListArgs, paged: boolean): SqlText {
  const params: unknown[] = [];
  const alias = 't';
  const keyExprs = columns.map((c) => scope.expr(alias, c));
  const tupleJson = `[${keyTuples.map((tuple) => jsonArray(tuple)).join(',')}]`;
  params.push(tupleJson);
  const match =
    columns.length === 1
      ? `${keyExprs[0]} IN (SELECT json_extract(value, '$[0]') FROM json_each(?))`
      : `(${keyExprs.join(', ')}) IN (SELECT ${columns.map((_, i) => `json_extract(value, '$[${i}]')`).join(', ')} FROM json_each(?))`;
  const predicate = and([match, compileWhere(scope, alias, args.where, params)]);
  const order = orderClause(scope, alias, orderTerms(scope.model, args.order_by));
  const from = `FROM ${quoteIdentifier(scope.model.sql)} AS ${alias} WHERE ${predicate}`;
  if (!paged) return { sql: `SELECT ${keyExprs.join(', ')}, ${scope.selectList(alias)} ${from}`, params };
  const { limit, offset } = pageArgs(args.limit, args.offset);
  params.push(offset, offset + limit);
  return {
    sql: `SELECT * FROM (SELECT ${keyExprs.join(', ')}, ${scope.selectList(alias)}, row_number() OVER (PARTITION BY ${keyExprs.join(', ')} ORDER BY ${order}) AS _fleetql_rn ${from}) WHERE _fleetql_rn > ? AND _fleetql_rn <= ? ORDER BY _fleetql_rn`,
    params,
  };
}
