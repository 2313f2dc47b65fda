import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'libsql';
import { compareDirected, compareSqlValues } from '../../src/query/compare.js';

const values: unknown[] = [
  null, -(2n ** 63n), -1.5, -1n, 0n, 0, 0.5, 1n, 1, 9007199254740992n, 9007199254740993n, 9007199254740992.0, 1e300, 2n ** 63n - 1n,
  '', 'A', 'a', 'Z', 'é', '\uD7FF', '\uE000', '\uFFFF', '😀', 'a😀', 'a\uFFFF', 'a\uE000b', 'ab', 'b', 'b😀c', Buffer.from([]), Buffer.from([0]), Buffer.from([1, 2]), Buffer.from([255]),
];

test('values order exactly as SQLite orders them, for every pair', () => {
  const db = new Database(':memory:');
  const statement = db.prepare('SELECT CASE WHEN ? < ? THEN -1 WHEN ? > ? THEN 1 ELSE 0 END AS c');
  statement.safeIntegers(true);
  for (const a of values) {
    for (const b of values) {
      if (a === null || b === null) continue; // NULL placement is the direction's business
      const expected = Number((statement.get([a, b, a, b]) as { c: bigint }).c);
      assert.equal(Math.sign(compareSqlValues(a, b)), expected, `${String(a)} vs ${String(b)}`);
    }
  }
  db.close();
});

test('directions place NULLs as PostgreSQL does by default', () => {
  assert.equal(compareDirected(null, 1n, 'asc'), 1);
  assert.equal(compareDirected(null, 1n, 'asc_nulls_first'), -1);
  assert.equal(compareDirected(null, 1n, 'desc'), -1);
  assert.equal(compareDirected(null, 1n, 'desc_nulls_last'), 1);
  assert.equal(compareDirected(2n, 1n, 'desc'), -1);
  assert.equal(compareDirected('a', 'b', 'asc'), -1);
});
