import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadMigrations, migrateTo, appliedMigrations } from '../../src/migrations/index.js';
import { SqliteDatabase } from '../../src/storage/index.js';
import { demoMigrations, runCli, startServer, tempDir } from '../helpers/servers.js';

function migrationsDir(t: Parameters<typeof tempDir>[0], files: Record<string, string>): string {
  const dir = tempDir(t);
  for (const [name, sql] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), sql);
  return dir;
}

test('migrations load in order with their checksums; the head is the last', (t) => {
  const set = loadMigrations(demoMigrations);
  assert.deepEqual(
    set.migrations.map((m) => [m.version, m.name]),
    [
      [1, 'create_machines'],
      [2, 'create_machine_events'],
    ],
  );
  assert.equal(set.head, 2);
  for (const m of set.migrations) assert.match(m.checksum, /^[0-9a-f]{64}$/);
  const dir = migrationsDir(t, { '0002_b.sql': 'CREATE TABLE b (x);', '0001_a.sql': 'CREATE TABLE a (x);', 'README.md': 'not a migration' });
  assert.deepEqual(loadMigrations(dir).migrations.map((m) => m.name), ['a', 'b']);
});

test('malformed migration sets are refused with MIGRATION_INVALID', (t) => {
  const cases: Array<Record<string, string>> = [
    {},
    { '0001_a.sql': 'CREATE TABLE a (x);', '0003_c.sql': 'CREATE TABLE c (x);' },
    { '0002_b.sql': 'CREATE TABLE b (x);' },
    { '0001_a.sql': 'CREATE TABLE a (x);', '1_b.sql': 'CREATE TABLE b (x);' },
    { '0001_A.sql': 'CREATE TABLE a (x);' },
    { '0001_a.sql': 'BEGIN;\nCREATE TABLE a (x);\nCOMMIT;' },
    { '0001_a.sql': '   ' },
  ];
  for (const files of cases) {
    assert.throws(() => loadMigrations(migrationsDir(t, files)), (error: any) => error.code === 'MIGRATION_INVALID', JSON.stringify(files));
  }
  // Triggers have BEGIN … END bodies and are fine.
  const trigger = migrationsDir(t, {
    '0001_a.sql': 'CREATE TABLE a (x, n);\nCREATE TRIGGER a_n AFTER INSERT ON a\nBEGIN\n  UPDATE a SET n = 1 WHERE rowid = new.rowid;\nEND;',
  });
  assert.equal(loadMigrations(trigger).head, 1);
});

test('each migration runs in its own transaction: a failure leaves the last good version', (t) => {
  const dir = migrationsDir(t, {
    '0001_a.sql': 'CREATE TABLE a (x INTEGER);',
    '0002_b.sql': 'CREATE TABLE b (x INTEGER);\nINSERT INTO b VALUES (1);\nINSERT INTO no_such_table VALUES (1);',
  });
  const set = loadMigrations(dir);
  const db = SqliteDatabase.open(path.join(tempDir(t), 'i.db'), { journalMode: 'delete', busyTimeoutMs: 100 });
  t.after(() => db.close());
  assert.throws(() => migrateTo(db, set, 2), (error: any) => error.code === 'MIGRATION_FAILED' && error.extensions.version === 2);
  assert.deepEqual(appliedMigrations(db).map((m) => m.version), [1]);
  assert.equal(db.get(`SELECT name FROM sqlite_master WHERE name = 'b'`), undefined, 'the failed migration left nothing behind');
});

test('a server refuses to start when an applied migration was edited or removed', async (t) => {
  const dir = migrationsDir(t, {
    '0001_create_machines.sql': fs.readFileSync(path.join(demoMigrations, '0001_create_machines.sql'), 'utf8'),
    '0002_create_machine_events.sql': fs.readFileSync(path.join(demoMigrations, '0002_create_machine_events.sql'), 'utf8'),
  });
  const dataDir = tempDir(t);
  const first = await startServer(t, { dataDir, migrationsDir: dir });
  assert.equal((await first.gql(`mutation { create_instance(id: "a") { id } }`)).errors, undefined);
  await first.close();

  fs.appendFileSync(path.join(dir, '0002_create_machine_events.sql'), '\n-- an innocent-looking edit\n');
  const edited = await runCli(['serve', '--port', '0', '--no-demo', '--data', dataDir, '--migrations', dir]);
  assert.equal(edited.code, 1);
  assert.match(edited.stderr, /MIGRATION_CHECKSUM_MISMATCH: migration 2 \(0002_create_machine_events\.sql\) was changed after it was applied/);
  assert.doesNotMatch(edited.stderr, /\n\s+at /, 'a clear message, not a stack trace');

  fs.rmSync(path.join(dir, '0002_create_machine_events.sql'));
  const missing = await runCli(['serve', '--port', '0', '--no-demo', '--data', dataDir, '--migrations', dir]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /MIGRATION_MISSING: migration 2 \(0002_create_machine_events\.sql\) was applied to instances but its file is missing/);

  // A new migration on top is fine: the server starts, and new instances get it.
  fs.writeFileSync(path.join(dir, '0002_create_machine_events.sql'), fs.readFileSync(path.join(demoMigrations, '0002_create_machine_events.sql')));
  fs.writeFileSync(path.join(dir, '0003_add_notes.sql'), 'ALTER TABLE machines ADD COLUMN notes TEXT;');
  const next = await startServer(t, { dataDir, migrationsDir: dir });
  const created = await next.gql(`mutation { create_instance(id: "b") { schema_version migrations_applied { version } } }`);
  assert.deepEqual(created.data!['create_instance'], { schema_version: 3, migrations_applied: [{ version: 1 }, { version: 2 }, { version: 3 }] });
  const old = await next.gql(`{ instance(id: "a") { schema_version } }`);
  assert.equal(old.data!['instance'].schema_version, 2, 'an existing instance stays at its version until a rollout moves it');
});
