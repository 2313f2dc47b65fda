/**
 * A cold fan-out reads each instance through the catalog with `withInstanceNow`: answered in the
 * same turn (the handle opened at once) unless something must be waited for first, and then the
 * same promise `withInstance` gives. Errors and scope answer as `withInstance` answers them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import type { InstanceRecord } from '../../src/catalog/index.js';
import { isFleetqlError } from '../../src/errors.js';
import { ScopedInstances, unrestricted } from '../../src/instances/index.js';
import type { SqliteDatabase } from '../../src/storage/index.js';
import { repoRoot, startServer, tempDir } from '../helpers/servers.js';

const baseMigration = path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql');
// Enough work inside the migration for the event loop to turn several times while a worker runs it.
const slowMigration = `ALTER TABLE items ADD COLUMN note TEXT;
CREATE TABLE burn AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT sum(x) AS total FROM c;
DROP TABLE burn;
`;

const countItems = (db: SqliteDatabase, record: InstanceRecord) => ({ version: record.schema_version, items: Number(db.row('SELECT count(*) FROM items')![0]) });

function fileOf(dataDir: string, id: string): string {
  const hash = createHash('sha256').update(id).digest('hex');
  return path.join(dataDir, 'instances', hash.slice(0, 2), hash.slice(2, 4), `${id}.db`);
}

test('withInstanceNow opens and reads at once, and waits (a promise) only for what must be waited for', async (t) => {
  const v1 = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(v1, '0001_create_items.sql'));
  const first = await startServer(t, { migrationsDir: v1 });
  const created = await first.gql(`mutation { a: create_instance(id: "a") { id } b: create_instance(id: "b") { id } c: create_instance(id: "c") { id }
    q: create_instance(id: "q") { id } x: insert_items(instance_id: "a", objects: [{id: 1}, {id: 2}]) { affected_rows } y: insert_items(instance_id: "b", objects: [{id: 1}]) { affected_rows } }`);
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  await first.close();
  fs.writeFileSync(fileOf(first.dataDir, 'c'), Buffer.alloc(8192, 0xab));

  const v2 = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(v2, '0001_create_items.sql'));
  fs.writeFileSync(path.join(v2, '0002_slow.sql'), slowMigration);
  const server = await startServer(t, { migrationsDir: v2, dataDir: first.dataDir, migrationThreads: 1 });
  const service = server.fleetql.instances();
  const view = new ScopedInstances(service, unrestricted);

  const misses = service.cacheStats().misses;
  assert.deepEqual(view.withInstanceNow('a', countItems), { version: 1, items: 2 }, 'no handle yet: opened and read in this turn');
  assert.equal(service.cacheStats().misses, misses + 1);
  assert.deepEqual(view.withInstanceNow('a', countItems), { version: 1, items: 2 }, 'then cached');
  assert.equal(service.cacheStats().misses, misses + 1);

  // Errors come at once, as withInstance reports them.
  assert.throws(() => view.withInstanceNow('nobody', countItems), (error: unknown) => isFleetqlError(error, 'INSTANCE_NOT_FOUND'));
  assert.throws(
    () => view.withInstanceNow('c', countItems),
    (error: unknown) => isFleetqlError(error, 'INSTANCE_UNAVAILABLE') && error.extensions['instance_id'] === 'c',
    'a damaged file',
  );
  const tenant = new ScopedInstances(service, { instances: { ids: ['a'] }, write: false, lifecycle: false });
  assert.throws(() => tenant.withInstanceNow('b', countItems), (error: unknown) => isFleetqlError(error, 'INSTANCE_NOT_FOUND'), 'outside the scope: not found');
  assert.deepEqual(tenant.withInstanceNow('a', countItems), { version: 1, items: 2 });

  // A migration running on a worker (the file only: the catalog is its caller's): reads wait for
  // it (a promise) and see the migrated file.
  const hasNote = (db: SqliteDatabase) => Number(db.row(`SELECT count(*) FROM pragma_table_info('items') WHERE name = 'note'`)![0]) === 1;
  let settled = false;
  const migrating = service.migrate('b', 2).finally(() => (settled = true));
  const outcomes: Array<'now' | 'waited'> = [];
  const waited: Array<Promise<boolean>> = [];
  while (!settled) {
    const outcome = view.withInstanceNow('b', hasNote);
    outcomes.push(outcome instanceof Promise ? 'waited' : 'now');
    if (outcome instanceof Promise) waited.push(outcome);
    await nextTurn();
  }
  assert.equal((await migrating).to, 2);
  assert.ok(waited.length > 0, 'a read during the migration waited for it');
  assert.ok(!outcomes.slice(outcomes.indexOf('waited')).includes('now'), `no read at once once the instance was shut out: ${outcomes.join(' ')}`);
  assert.deepEqual(await Promise.all(waited), waited.map(() => true), 'a read that waited saw the migrated file');
  assert.equal(view.withInstanceNow('b', hasNote), true, 'after it: at once again');
  await server.close();

  // Lazy migrations: an instance behind head waits for its migration on access.
  const lazy = await startServer(t, { migrationsDir: v2, dataDir: first.dataDir, lazyMigrations: true, migrationThreads: 1 });
  const lazyView = new ScopedInstances(lazy.fleetql.instances(), unrestricted);
  const due = lazyView.withInstanceNow('q', countItems);
  assert.ok(due instanceof Promise, 'a lazy migration due: a promise');
  assert.deepEqual(await due, { version: 2, items: 0 });
  assert.deepEqual(lazyView.withInstanceNow('q', countItems), { version: 2, items: 0 }, 'migrated: at once');
});
