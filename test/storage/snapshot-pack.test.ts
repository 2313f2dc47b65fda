import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'libsql';
import { PackWriter, readPackIndex, restorePackEntryDurably, sameAsPackEntry } from '../../src/storage/index.js';
import { tempDir } from '../helpers/servers.js';

test('a snapshot pack holds whole images of rollback-journal files, large ones in chunks, and is whole or absent', async (t) => {
  const dir = tempDir(t);
  const file = (name: string) => path.join(dir, name);
  // A 3 MB database (more than one copy chunk), a small one, a WAL one and something else.
  const big = new Database(file('big.db'));
  big.exec(`CREATE TABLE t (x BLOB); INSERT INTO t SELECT randomblob(1000) FROM (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 3000) SELECT i FROM k);`);
  big.close();
  const small = new Database(file('small.db'));
  small.exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1);`);
  small.close();
  const wal = new Database(file('wal.db'));
  wal.exec(`PRAGMA journal_mode = WAL; CREATE TABLE t (x);`);
  wal.close();
  fs.writeFileSync(file('junk.db'), 'not a database'.repeat(20));

  const writer = new PackWriter(file('p.pack'));
  assert.deepEqual(['big', 'small', 'wal', 'junk', 'missing'].map((name) => writer.addFile(name, file(`${name}.db`))), [true, true, false, false, false]);
  assert.ok(!fs.existsSync(file('p.pack')), 'not in place before it is finished');
  const entries = writer.finish();
  assert.deepEqual([...entries.keys()], ['big', 'small']);
  assert.deepEqual(readPackIndex(file('p.pack')), entries);
  assert.ok(entries.get('big')!.length > 3_000_000);
  assert.equal(entries.get('small')!.counter, fs.readFileSync(file('small.db')).readUInt32BE(24));
  for (const name of ['big', 'small']) assert.ok(sameAsPackEntry(file(`${name}.db`), file('p.pack'), entries.get(name)!));
  assert.ok(!sameAsPackEntry(file('small.db'), file('p.pack'), entries.get('big')!));

  // Changed after packing: no longer the same; restored: the same again, byte for byte.
  const before = fs.readFileSync(file('big.db'));
  const changed = new Database(file('big.db'));
  changed.exec(`UPDATE t SET x = zeroblob(1000) WHERE rowid = 2500`);
  changed.close();
  assert.ok(!sameAsPackEntry(file('big.db'), file('p.pack'), entries.get('big')!));
  restorePackEntryDurably(file('p.pack'), entries.get('big')!, file('big.db'));
  assert.ok(fs.readFileSync(file('big.db')).equals(before));

  // A pack cut short (as a crash could leave one written in place by other means) is not read as a pack.
  fs.copyFileSync(file('p.pack'), file('cut.pack'));
  fs.truncateSync(file('cut.pack'), fs.statSync(file('cut.pack')).size - 3);
  assert.equal(readPackIndex(file('cut.pack')), undefined);
  // Nothing added: no file at all.
  assert.equal(new PackWriter(file('empty.pack')).finish().size, 0);
  assert.deepEqual(fs.readdirSync(dir).filter((name) => name.includes('empty')), []);
});
