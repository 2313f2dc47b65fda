/**
 * Parameters written into a statement as literals: SQLite must read each literal as exactly the
 * value the driver would have bound (type included), and anything without such a literal stays
 * bound, in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'libsql';
import { inlineLiterals } from '../../src/query/index.js';

const values: unknown[] = [
  'failed',
  "O'Brien",
  "''",
  "'; DROP TABLE t; --",
  '?',
  '"?"',
  'caf\u00e9 \u{1F680} \u4e2d',
  '',
  'x'.repeat(256),
  0n,
  42n,
  -1n,
  9223372036854775807n,
  -9223372036854775808n,
  null,
];

test('every inlined literal reads back as the value the driver binds, type and all', () => {
  const db = new Database(':memory:');
  try {
    for (const value of values) {
      const text = { sql: 'SELECT typeof(?), quote(?), ? = ?', params: [value, value, value, value] };
      const inlined = inlineLiterals(text);
      assert.deepEqual(inlined.params, [], `${String(value)} is inlined`);
      const bound = db.prepare(text.sql).raw(true).get(text.params);
      const written = db.prepare(inlined.sql).raw(true).get([]);
      assert.deepEqual(written, bound, `${String(value)}: ${inlined.sql}`);
    }
  } finally {
    db.close();
  }
});

test('values without an exact literal stay bound, in order, and the rest of the statement is untouched', () => {
  const long = 'y'.repeat(257);
  const text = {
    sql: `SELECT "a?b", 'it''s ?', ? , [c?], ?, ? FROM t WHERE x = ? AND y - ? > 0 LIMIT ?`,
    params: ['text', 1.5, 'nul\u0000inside', 'lone \ud800 surrogate', -5n, long],
  };
  const inlined = inlineLiterals(text);
  assert.equal(inlined.sql, `SELECT "a?b", 'it''s ?', 'text' , [c?], ?, ? FROM t WHERE x = ? AND y - (-5) > 0 LIMIT ?`);
  assert.deepEqual(inlined.params, [1.5, 'nul\u0000inside', 'lone \ud800 surrogate', long]);
  assert.equal(inlineLiterals({ sql: 'SELECT ? + ?', params: [1, 2.5] }).sql, 'SELECT ? + ?', 'numbers bind as REAL: they stay bound');
});

test('anything unexpected leaves the statement as it is', () => {
  for (const text of [
    { sql: 'SELECT ? -- a comment ?', params: ['a', 'b'] },
    { sql: 'SELECT ? /* ? */', params: ['a', 'b'] },
    { sql: 'SELECT ?1', params: ['a'] },
    { sql: 'SELECT ?, ?', params: ['a'] },
    { sql: 'SELECT ?', params: ['a', 'b'] },
    { sql: "SELECT 'unterminated ?", params: ['a'] },
  ]) {
    assert.equal(inlineLiterals(text), text, text.sql);
  }
});
