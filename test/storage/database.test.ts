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

test('a connection that holds its read lock: others read but cannot write while it is open; its own writes delete their journal and move the change counter; closed, it lets the next writer in at once', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-storage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'a.db');
  const setup = SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 0 });
  setup.exec('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);');
  setup.close();
  const counter = () => fs.readFileSync(file).readUInt32BE(24);
  const other = () => SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 0 });

  const holder = SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 0, holdReadLock: true });
  assert.deepEqual(holder.row('SELECT count(*) FROM t'), [1]);
  const reader = other();
  assert.deepEqual(reader.row('SELECT count(*) FROM t'), [1], 'another connection still reads');
  assert.throws(() => reader.exec('INSERT INTO t VALUES (2)'), (error: any) => error.sqliteCode === 'SQLITE_BUSY', 'but cannot write while the lock is held');

  const before = counter();
  holder.transaction(() => holder.run('INSERT INTO t VALUES (3)'));
  holder.run('INSERT INTO t VALUES (4)');
  assert.equal(fs.existsSync(`${file}-journal`), false, 'each commit deleted its journal');
  assert.equal(counter(), before + 2, 'each write moved the change counter');
  // Its statements outlive the connection until they are collected: the lock must not.
  assert.deepEqual(holder.row('SELECT count(*) FROM t'), [3]);
  holder.close();
  reader.exec('INSERT INTO t VALUES (5)');
  assert.deepEqual(reader.row('SELECT count(*) FROM t'), [4]);
  reader.close();
});

test('the statement cache is bounded per way of reading: the oldest statements go, the answers stay right', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-storage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = SqliteDatabase.open(path.join(dir, 'a.db'), { journalMode: 'delete', busyTimeoutMs: 1000, safeIntegers: true });
  t.after(() => db.close());
  for (let i = 0; i < 200; i++) {
    assert.deepEqual(db.row(`SELECT ${i}`), [BigInt(i)]);
    assert.deepEqual(db.rowsReader(`SELECT ${i}, 'rows'`)([]), [[BigInt(i), 'rows']]);
  }
  assert.equal(db.statementsCached, 128, '64 for row, 64 for rows');
  assert.deepEqual(db.row('SELECT 0'), [0n], 'a dropped statement is prepared again');
});
