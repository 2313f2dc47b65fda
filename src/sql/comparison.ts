import { FleetqlError } from '../errors.js';

/** Hasura-style comparison operators on one scalar column. */
/** A value given to an operator; `null` is refused except by `_is_null`. */
type Operand = {} | null;

export interface ComparisonExp {
  _eq?: Operand;
  _neq?: Operand;
  _gt?: Operand;
  _gte?: Operand;
  _lt?: Operand;
  _lte?: Operand;
  _in?: readonly Operand[] | null;
  _nin?: readonly Operand[] | null;
  _like?: string | null;
  _nlike?: string | null;
  _ilike?: string | null;
  _nilike?: string | null;
  _is_null?: boolean | null;
}

const binary = { _eq: '=', _neq: '<>', _gt: '>', _gte: '>=', _lt: '<', _lte: '<=' } as const;

/** Quotes an SQL identifier. Identifiers only ever come from introspection or code, never from a request. */
export function quoteIdentifier(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains NUL');
  return `"${name.replaceAll('"', '""')}"`;
}

/** Binds as the driver expects: dates as ISO-8601 text (how fleetql stores time), the rest unchanged. */
function requireValue(op: string, value: unknown): unknown {
  if (value === null) throw new FleetqlError('INVALID_ARGUMENT', `${op} does not take null; use _is_null`);
  return value instanceof Date ? value.toISOString() : value;
}

/** JSON text for `json_each`, keeping bigint values exact. */
export function jsonArray(values: readonly unknown[]): string {
  return `[${values
    .map((value) => {
      if (value === null) throw new FleetqlError('INVALID_ARGUMENT', '_in/_nin lists do not take null; use _is_null');
      if (typeof value === 'bigint') return value.toString();
      return JSON.stringify(value instanceof Date ? value.toISOString() : value);
    })
    .join(',')}]`;
}

/**
 * Hasura's `_like` is case-sensitive (PostgreSQL LIKE) while SQLite's LIKE folds ASCII case, so the
 * pattern becomes an equivalent GLOB: `%` → `*`, `_` → `?`, `\x` → literal x, GLOB's own specials
 * bracketed.
 */
export function likeToGlob(pattern: string): string {
  let glob = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '\\' && i + 1 < pattern.length) {
      glob += globLiteral(pattern[++i]!);
    } else if (char === '%') glob += '*';
    else if (char === '_') glob += '?';
    else glob += globLiteral(char);
  }
  return glob;
}

function globLiteral(char: string): string {
  return char === '*' || char === '?' || char === '[' ? `[${char}]` : char;
}

/**
 * Compiles one comparison expression on an SQL expression (an already quoted column) into
 * predicates joined by AND; values are appended to `params`, never spliced into the SQL text.
 */
export function compileComparison(column: string, exp: ComparisonExp, params: unknown[]): string[] {
  const predicates: string[] = [];
  for (const [op, value] of Object.entries(exp)) {
    if (value === undefined) continue;
    if (op in binary) {
      params.push(requireValue(op, value));
      predicates.push(`${column} ${binary[op as keyof typeof binary]} ?`);
      continue;
    }
    switch (op) {
      case '_in':
      case '_nin': {
        if (value === null || !Array.isArray(value)) throw new FleetqlError('INVALID_ARGUMENT', `${op} takes a list`);
        params.push(jsonArray(value));
        predicates.push(`${column} ${op === '_in' ? 'IN' : 'NOT IN'} (SELECT value FROM json_each(?))`);
        break;
      }
      case '_like':
      case '_nlike':
        params.push(likeToGlob(String(requireValue(op, value))));
        predicates.push(`${column} ${op === '_like' ? 'GLOB' : 'NOT GLOB'} ?`);
        break;
      case '_ilike':
      case '_nilike':
        params.push(String(requireValue(op, value)));
        predicates.push(`${column} ${op === '_ilike' ? 'LIKE' : 'NOT LIKE'} ? ESCAPE '\\'`);
        break;
      case '_is_null':
        predicates.push(requireValue(op, value) === true ? `${column} IS NULL` : `${column} IS NOT NULL`);
        break;
      default:
        throw new FleetqlError('INVALID_ARGUMENT', `unknown comparison operator ${op}`);
    }
  }
  return predicates;
}

/** Joins predicates with AND; an empty list is TRUE. */
export function and(predicates: readonly string[]): string {
  if (predicates.length === 0) return '1';
  if (predicates.length === 1) return predicates[0]!;
  return predicates.map((p) => `(${p})`).join(' AND ');
}
