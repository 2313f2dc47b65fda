import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { migrateFile } from '../../src/instances/file-migration.js';
import { appliedMigrations, currentVersion, makeMigrationSet, migrateTo, type MigrationSet } from '../../src/migrations/index.js';
import { SqliteDatabase } from '../../src/storage/index.js';
import { tempDir } from '../helpers/servers.js';

const set: MigrationSet = makeMigrationSet([
  { version: 1, name: 'items', sql: 'CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER);', checksum: 'c1' },
  { version: 2, name: 'note', sql: 'ALTER TABLE items ADD COLUMN note TEXT;', checksum: 'c2' },
  { version: 3, name: 'note_index', sql: 'CREATE INDEX items_note ON items (note);', checksum: 'c3' },
]);

const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;

/** A file at `version`, written and closed without a statement left behind. */
function fileAt(dir: string, name: string, version: number): string {
  const file = path.join(dir, `${name}.db`);
  const db = SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 1000 });
  migrateTo(db, set, version, { from: 0, atomic: true });
  db.exec('INSERT INTO items (id, n) VALUES (1, 1)');
  db.close();
  return file;
}

function versionOf(file: string): { version: number; applied: number[] } {
  const db = SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 1000 });
  try {
    return { version: currentVersion(db), applied: appliedMigrations(db).map((m) => m.version) };
  } finally {
    db.close();
  }
}

/** SQLite's file change counter, read from the header. */
function changeCounter(file: string): number {
  const header = Buffer.alloc(28);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, 28, 0);
  } finally {
    fs.closeSync(fd);
  }
  return header.readUInt32BE(24);
}

const job = (file: string, target: number, expected?: number, snapshot?: string) => ({ file, target, expected, snapshot, journalMode: 'delete' as const, busyTimeoutMs: 1000 });

test('at the version the catalog expects, a file is migrated without a statement: its descriptor is back as the call returns', (t) => {
  const dir = tempDir(t);
  const files = Array.from({ length: 40 }, (_, i) => fileAt(dir, `f${i}`, 1));
  const before = openDescriptors();
  for (const file of files) assert.deepEqual(migrateFile(job(file, 3, 1), set), { from: 1, to: 3, changeCounter: changeCounter(file) });
  // No collection and no turn of the event loop in between: nothing may be left open.
  assert.equal(openDescriptors(), before, 'every migrated file was closed at once');
  for (const file of files) assert.deepEqual(versionOf(file), { version: 3, applied: [1, 2, 3] });
});

test('a file ahead of the catalog (migrated, then a crash before the record) is left as it is and reported at its version', (t) => {
  const dir = tempDir(t);
  const file = fileAt(dir, 'ahead', 3);
  const snapshot = path.join(dir, 'snapshots', 'ahead.db');
  const before = fs.readFileSync(file);
  assert.deepEqual(migrateFile(job(file, 3, 2, snapshot), set), { from: 3, to: 3, changeCounter: changeCounter(file) });
  assert.deepEqual(fs.readFileSync(file), before, 'not a byte changed');
  assert.equal(fs.existsSync(snapshot), false, 'no snapshot of a file that was not migrated');
});

test('a file behind the catalog is migrated from its own version, every step recorded', (t) => {
  const dir = tempDir(t);
  const file = fileAt(dir, 'behind', 1);
  const snapshot = path.join(dir, 'snapshots', 'behind.db');
  assert.deepEqual(migrateFile(job(file, 3, 2, snapshot), set), { from: 1, to: 3, changeCounter: changeCounter(file) });
  assert.deepEqual(versionOf(file), { version: 3, applied: [1, 2, 3] });
  assert.deepEqual(versionOf(snapshot), { version: 1, applied: [1] }, 'the snapshot is the file as it was');
});

test('a failing migration leaves the file at its version and takes its snapshot away', (t) => {
  const dir = tempDir(t);
  const file = fileAt(dir, 'fails', 2);
  const broken = makeMigrationSet([...set.migrations.slice(0, 2), { version: 3, name: 'broken', sql: 'CREATE INDEX items_x ON items (no_such_column);', checksum: 'c3' }]);
  const snapshot = path.join(dir, 'snapshots', 'fails.db');
  assert.throws(() => migrateFile(job(file, 3, 2, snapshot), broken), (error: { code?: string }) => error.code === 'MIGRATION_FAILED');
  assert.deepEqual(versionOf(file), { version: 2, applied: [1, 2] });
  assert.equal(fs.existsSync(snapshot), false);
});
