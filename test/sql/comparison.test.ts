import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'libsql';
import { compileComparison, likeToGlob, quoteIdentifier } from '../../src/sql/index.js';

test('LIKE patterns become case-sensitive GLOBs with escapes kept literal', () => {
  assert.equal(likeToGlob('ab%'), 'ab*');
  assert.equal(likeToGlob('a_c'), 'a?c');
  assert.equal(likeToGlob('100\\%'), '100%');
  assert.equal(likeToGlob('a\\_b'), 'a_b');
  assert.equal(likeToGlob('*?['), '[*][?][[]');
});

test('comparisons bind every value and match what SQL would', () => {
  const db = new Database(':memory:');
  db.exec(`CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('Apple'), ('apple'), ('a%b'), ('axb'), ('x''y'), (NULL)`);
  const select = (exp: Record<string, unknown>) => {
    const params: unknown[] = [];
    const predicates = compileComparison(quoteIdentifier('v'), exp, params);
    assert.ok(!predicates.join(' ').includes("'Apple'"), 'values are never spliced into SQL');
    const sql = `SELECT v FROM t WHERE ${predicates.map((p) => `(${p})`).join(' AND ') || '1'} ORDER BY v`;
    return (db.prepare(sql).all(params) as Array<{ v: string | null }>).map((r) => r.v);
  };
  assert.deepEqual(select({ _eq: 'Apple' }), ['Apple']);
  assert.deepEqual(select({ _like: 'a%' }), ['a%b', 'apple', 'axb']);
  assert.deepEqual(select({ _ilike: 'A%' }), ['Apple', 'a%b', 'apple', 'axb']);
  assert.deepEqual(select({ _like: 'a\\%b' }), ['a%b']);
  assert.deepEqual(select({ _in: ['axb', "x'y"] }), ['axb', "x'y"]);
  assert.deepEqual(select({ _nin: ['axb'], _is_null: false }), ['Apple', 'a%b', 'apple', "x'y"]);
  assert.deepEqual(select({ _is_null: true }), [null]);
  assert.deepEqual(select({ _gt: 'b' }), ["x'y"]);
  assert.throws(() => select({ _eq: null }), (error: any) => error.code === 'INVALID_ARGUMENT');
  assert.throws(() => select({ _regex: 'x' }), (error: any) => error.code === 'INVALID_ARGUMENT');
  db.close();
});

test('a 50,000-element _in is one bound parameter', () => {
  const params: unknown[] = [];
  const values = Array.from({ length: 50_000 }, (_, i) => `v${i}`);
  compileComparison('"v"', { _in: values }, params);
  assert.equal(params.length, 1);
});

test('identifiers are quoted, embedded quotes doubled', () => {
  assert.equal(quoteIdentifier('order'), '"order"');
  assert.equal(quoteIdentifier('we"ird'), '"we""ird"');
  assert.throws(() => quoteIdentifier('a\u0000b'));
});
