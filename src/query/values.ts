import { FleetqlError } from '../errors.js';
import type { ColumnKind } from '../migrations/index.js';

/** SQLite value (safe-integer mode: INTEGER comes as bigint) → the value a GraphQL field resolves to. */
export function toGraphQL(kind: ColumnKind, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'integer':
      return typeof value === 'number' && !Number.isInteger(value) ? value : typeof value === 'string' ? value : BigInt(value as bigint | number);
    case 'real':
    case 'numeric':
      return typeof value === 'bigint' ? Number(value) : typeof value === 'string' ? Number(value) : value;
    case 'text':
    case 'datetime':
      return value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : String(value);
    case 'blob':
      return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : Buffer.from(String(value)).toString('base64');
    case 'boolean':
      return value === 1n || value === 1 || value === true || value === '1' || value === 'true';
    case 'json':
      if (typeof value !== 'string') return jsonSafe(value);
      try {
        return JSON.parse(value) as unknown;
      } catch {
        return value;
      }
    case 'any':
      return jsonSafe(value);
  }
}

/** For JSON output: bigint as a number when exact, else a string; bytes as base64. */
function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return value;
}

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A GraphQL input value (already parsed by its scalar) → the value bound to SQLite for a column. */
export function toSql(kind: ColumnKind, value: unknown, column: string): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'integer':
      return value;
    case 'real':
    case 'numeric':
      return value;
    case 'text':
    case 'datetime':
      return text(value, column);
    case 'blob':
      if (typeof value !== 'string' || !base64.test(value)) throw new FleetqlError('INVALID_ARGUMENT', `${column} takes base64 text`);
      return Buffer.from(value, 'base64');
    case 'boolean':
      return value === true ? 1 : 0;
    case 'json':
      return JSON.stringify(value);
    case 'any':
      if (typeof value === 'boolean') return value ? 1 : 0;
      if (typeof value === 'object') return JSON.stringify(value);
      return typeof value === 'string' ? text(value, column) : value;
  }
}

/** The driver reads text only up to a NUL, so such text could not come back as written: refuse it. */
function text(value: unknown, column: string): unknown {
  if (typeof value === 'string' && value.includes('\u0000')) {
    throw new FleetqlError('INVALID_ARGUMENT', `${column}: text cannot contain NUL (U+0000); store bytes in a BLOB column`);
  }
  return value;
}
