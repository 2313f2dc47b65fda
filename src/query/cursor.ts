import { createHash } from 'node:crypto';
import { FleetqlError } from '../errors.js';

/** Values in a cursor keep their SQLite type: bigint and bytes are tagged, the rest is JSON. */
function encodeValue(value: unknown): unknown {
  if (typeof value === 'bigint') return { b: value.toString() };
  if (value instanceof Uint8Array) return { x: Buffer.from(value).toString('base64') };
  return value;
}

function decodeValue(value: unknown): unknown {
  if (value !== null && typeof value === 'object') {
    const tagged = value as { b?: unknown; x?: unknown };
    if (typeof tagged.b === 'string' && /^-?\d+$/.test(tagged.b)) return BigInt(tagged.b);
    if (typeof tagged.x === 'string') return Buffer.from(tagged.x, 'base64');
    throw new FleetqlError('INVALID_ARGUMENT', 'malformed cursor');
  }
  return value;
}

/** A short fingerprint of the ordering, so a cursor is refused under a different order_by. */
export function orderFingerprint(order: string): string {
  return createHash('sha256').update(order).digest('base64url').slice(0, 8);
}

/** Opaque, URL-safe cursor: the position's order values, tied to the order they belong to. */
export function encodeCursor(fingerprint: string, values: readonly unknown[]): string {
  return Buffer.from(JSON.stringify([fingerprint, values.map(encodeValue)])).toString('base64url');
}

export function decodeCursor(cursor: string, fingerprint: string, length: number): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new FleetqlError('INVALID_ARGUMENT', 'malformed cursor');
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !Array.isArray(parsed[1])) throw new FleetqlError('INVALID_ARGUMENT', 'malformed cursor');
  if (parsed[0] !== fingerprint) throw new FleetqlError('INVALID_ARGUMENT', 'this cursor belongs to another order_by or filter');
  const values = (parsed[1] as unknown[]).map(decodeValue);
  if (values.length !== length) throw new FleetqlError('INVALID_ARGUMENT', 'malformed cursor');
  return values;
}
