import { FleetqlError } from '../errors.js';
import { and, quoteIdentifier } from '../sql/index.js';
import type { ColumnModel } from './data-model.js';
import { compileWhere, type BoolExp, type SqlText, type TableScope } from './plan.js';
import { toSql } from './values.js';

/** RETURNING list in `rowColumns` order; columns the instance lacks come back NULL. */
function returning(scope: TableScope): string {
  const table = quoteIdentifier(scope.model.sql);
  return scope.rowColumns.map((column) => scope.expr(table, column)).join(', ');
}

function columnsOf(scope: TableScope, object: Record<string, unknown>, what: string): Array<[ColumnModel, unknown]> {
  return Object.entries(object)
    .filter(([, value]) => value !== undefined)
    .map(([field, value]) => {
      const column = scope.model.byField(field);
      if (column === undefined || column.sql === 'rowid') throw new FleetqlError('INVALID_ARGUMENT', `${what}: unknown column ${field}`);
      if (column.generated) throw new FleetqlError('INVALID_ARGUMENT', `${what}: ${field} is generated and cannot be written`);
      return [column, value];
    });
}

export interface OnConflict {
  constraint: string;
  update_columns: readonly string[];
  where?: BoolExp | null | undefined;
}

/** One INSERT per object (so each returns its own row), with an optional upsert clause. */
export function insertRow(scope: TableScope, object: Record<string, unknown>, onConflict: OnConflict | null | undefined): SqlText {
  const table = quoteIdentifier(scope.model.sql);
  const values = columnsOf(scope, object, 'insert');
  scope.requireColumns(values.map(([column]) => column));
  const params: unknown[] = values.map(([column, value]) => toSql(column.kind, value, column.field));
  let sql =
    values.length === 0
      ? `INSERT INTO ${table} DEFAULT VALUES`
      : `INSERT INTO ${table} (${values.map(([c]) => quoteIdentifier(c.sql)).join(', ')}) VALUES (${values.map(() => '?').join(', ')})`;
  if (onConflict) {
    const constraint = scope.model.constraints.find((c) => c.name === onConflict.constraint);
    if (constraint === undefined) throw new FleetqlError('INVALID_ARGUMENT', `unknown constraint ${onConflict.constraint}`);
    const updates = onConflict.update_columns.map((field) => {
      const column = scope.model.byField(field);
      if (column === undefined || column.generated) throw new FleetqlError('INVALID_ARGUMENT', `cannot update ${field} on conflict`);
      return column;
    });
    scope.requireColumns(updates);
    const target = `(${constraint.columns.map(quoteIdentifier).join(', ')})`;
    if (updates.length === 0) sql += ` ON CONFLICT ${target} DO NOTHING`;
    else {
      // In DO UPDATE, bare column names are the existing row; `excluded` is the proposed one.
      const set = updates.map((c) => `${quoteIdentifier(c.sql)} = excluded.${quoteIdentifier(c.sql)}`).join(', ');
      const where = compileWhere(scope, table, onConflict.where, params);
      sql += ` ON CONFLICT ${target} DO UPDATE SET ${set}${where === '1' ? '' : ` WHERE ${where}`}`;
    }
  }
  return { sql: `${sql} RETURNING ${returning(scope)}`, params };
}

/** UPDATE with `_set` (assign) and `_inc` (add) over the rows `where` selects. */
export function updateRows(scope: TableScope, where: BoolExp | null | undefined, set: Record<string, unknown> | null | undefined, inc: Record<string, unknown> | null | undefined, extra: (alias: string, params: unknown[]) => string[] = () => []): SqlText {
  const table = quoteIdentifier(scope.model.sql);
  const assignments = columnsOf(scope, set ?? {}, '_set');
  const increments = columnsOf(scope, inc ?? {}, '_inc');
  if (assignments.length + increments.length === 0) throw new FleetqlError('INVALID_ARGUMENT', 'give at least one column in _set or _inc');
  for (const [column] of increments) {
    if (assignments.some(([c]) => c === column)) throw new FleetqlError('INVALID_ARGUMENT', `${column.field} is in both _set and _inc`);
  }
  scope.requireColumns([...assignments, ...increments].map(([c]) => c));
  const params: unknown[] = [];
  const clauses = [
    ...assignments.map(([column, value]) => {
      params.push(toSql(column.kind, value, column.field));
      return `${quoteIdentifier(column.sql)} = ?`;
    }),
    ...increments.map(([column, value]) => {
      const name = quoteIdentifier(column.sql);
      const amount = toSql(column.kind, value, column.field);
      if (column.kind !== 'integer') {
        params.push(amount);
        return `${name} = ${name} + ?`;
      }
      // SQLite turns an overflowing integer sum into a rounded REAL; abs(-2^63) raises instead.
      params.push(amount, amount);
      return `${name} = CASE WHEN typeof(${name}) = 'integer' AND typeof(${name} + ?) <> 'integer' THEN abs(-9223372036854775807 - 1) ELSE ${name} + ? END`;
    }),
  ];
  const predicate = and([compileWhere(scope, table, where, params), ...extra(table, params)]);
  return { sql: `UPDATE ${table} SET ${clauses.join(', ')} WHERE ${predicate} RETURNING ${returning(scope)}`, params };
}

export function deleteRows(scope: TableScope, where: BoolExp | null | undefined, extra: (alias: string, params: unknown[]) => string[] = () => []): SqlText {
  const table = quoteIdentifier(scope.model.sql);
  if (!scope.exists) throw new FleetqlError('SCHEMA_VERSION_BEHIND', `this instance has no table ${scope.model.name} yet`);
  const params: unknown[] = [];
  const predicate = and([compileWhere(scope, table, where, params), ...extra(table, params)]);
  return { sql: `DELETE FROM ${table} WHERE ${predicate} RETURNING ${returning(scope)}`, params };
}
