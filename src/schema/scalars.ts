import { GraphQLScalarType, Kind } from 'graphql';
import { FleetqlError } from '../errors.js';

const safe = (value: bigint): boolean => value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);

function toBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  // A JSON number past 2^53 has already been rounded by the JSON parser: such values come as strings.
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) {
    const parsed = BigInt(value);
    if (parsed >= -(2n ** 63n) && parsed < 2n ** 63n) return parsed;
  }
  throw new FleetqlError('INVALID_ARGUMENT', 'BigInt takes a 64-bit integer: a number within ±2^53 or a string of digits');
}

/**
 * SQLite INTEGER is 64-bit. A value is written as a JSON number while it is exact there and as a
 * string of digits beyond 2^53, so no client ever sees a rounded integer; both forms are accepted.
 */
export const BigIntScalar = new GraphQLScalarType<bigint, number | string>({
  name: 'BigInt',
  description: 'An integer: a JSON number when it is within ±2^53, a string of digits beyond. Inputs are 64-bit; sums may be wider.',
  serialize(value) {
    // Output may exceed 64 bits (a sum over many rows); input is held to what SQLite can store.
    const big = typeof value === 'bigint' ? value : toBigInt(value);
    return safe(big) ? Number(big) : big.toString();
  },
  parseValue: toBigInt,
  parseLiteral(ast) {
    if (ast.kind === Kind.INT || ast.kind === Kind.STRING) return toBigInt(ast.value);
    throw new FleetqlError('INVALID_ARGUMENT', 'BigInt takes an integer or a string of digits');
  },
});
