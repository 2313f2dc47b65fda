import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SqliteDatabase } from '../../src/storage/index.js';

test('one SQL text read by rows(), row(), all(), get() and run() in turns answers each call for its own parameters', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-storage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = SqliteDatabase.open(path.join(dir, 'a.db'), { journalMode: 'delete', busyTimeoutMs: 1000, safeIntegers: true });
  t.after(() => db.close());
  db.exec('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);');
  const sql = 'SELECT x FROM t WHERE x >= ? ORDER BY x';
  // The driver's `get` right after `all` on the same statement returns a row of the earlier run.
  assert.deepEqual(db.rows(sql, [2]), [[2n], [3n]]);
  assert.deepEqual(db.row(sql, [1]), [1n]);
  assert.deepEqual(db.rows(sql, [3]), [[3n]]);
  assert.deepEqual(db.row(sql, [2]), [2n]);
  assert.deepEqual(db.all(sql, [1]), [{ x: 1n }, { x: 2n }, { x: 3n }]);
  assert.equal(db.get<{ x: bigint }>(sql, [3])?.x, 3n);
  assert.deepEqual(db.all(sql, [2]), [{ x: 2n }, { x: 3n }]);
  assert.equal(db.get<{ x: bigint }>(sql, [1])?.x, 1n);
  assert.equal(db.row(sql, [4]), undefined);
});
