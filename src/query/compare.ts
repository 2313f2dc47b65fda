import type { OrderDirection } from '../sql/index.js';

/** SQLite's storage-class order: NULL < INTEGER/REAL < TEXT < BLOB. */
function storageClass(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'bigint' || typeof value === 'number') return 1;
  if (typeof value === 'string') return 2;
  return 3;
}

function compareNumbers(a: bigint | number, b: bigint | number): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  // An integer against a real: compare exactly, as SQLite does, without rounding the integer.
  const int = typeof a === 'bigint' ? a : (b as bigint);
  const real = typeof a === 'number' ? a : (b as number);
  let sign: number;
  if (Number.isNaN(real)) sign = 1;
  else if (real === Infinity) sign = -1;
  else if (real === -Infinity) sign = 1;
  else {
    const floor = BigInt(Math.floor(real));
    sign = int < floor ? -1 : int > floor ? 1 : real === Math.floor(real) ? 0 : -1;
  }
  return typeof a === 'bigint' ? sign : 0 - sign || 0;
}

/**
 * Text in UTF-8 byte order without encoding it when that is easy: UTF-8 bytes sort as code points
 * do, and so do UTF-16 units below U+D800. Where both differing units are at or past it
 * (surrogates, U+E000–U+FFFF, lone surrogates), the bytes are compared.
 */
function compareText(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0xd800 || y < 0xd800) return x - y;
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  }
  return a.length - b.length;
}

/**
 * Orders two SQLite values exactly as SQLite's BINARY collation does: by storage class, numbers by
 * value (integers and reals exactly), text by UTF-8 bytes (not UTF-16 code units), blobs by bytes.
 */
export function compareSqlValues(a: unknown, b: unknown): number {
  const classA = storageClass(a);
  const classB = storageClass(b);
  if (classA !== classB) return classA - classB;
  switch (classA) {
    case 0:
      return 0;
    case 1:
      return compareNumbers(a as bigint | number, b as bigint | number);
    case 2:
      return a === b ? 0 : Math.sign(compareText(a as string, b as string));
    default:
      return Buffer.compare(Buffer.from(a as Uint8Array), Buffer.from(b as Uint8Array));
  }
}

/** Compares two values under an order direction, placing NULLs as the direction says. */
export function compareDirected(a: unknown, b: unknown, direction: OrderDirection): number {
  const aNull = a === null || a === undefined;
  const bNull = b === null || b === undefined;
  const nullsFirst = direction === 'asc_nulls_first' || direction === 'desc' || direction === 'desc_nulls_first';
  if (aNull || bNull) {
    if (aNull && bNull) return 0;
    return aNull === nullsFirst ? -1 : 1;
  }
  const order = compareSqlValues(a, b);
  return direction.startsWith('asc') ? order : -order;
}
