/**
 * A fleet reads each selected instance at once on its warm handle (InstanceService.readNow), and
 * goes the async way, reading the catalog again, whenever the record it selected may no longer
 * describe the file: no handle, a handle reopened since the selection, a migration running, a
 * lazy migration due, or an instance outside the principal's scope. The async way itself
 * (`withInstanceNow`) answers in the same turn too, the handle opened at once, unless something
 * must be waited for first; then it gives `withInstance`'s promise.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import type { InstanceRecord } from '../../src/catalog/index.js';
import { isFleetqlError } from '../../src/errors.js';
import { later, ScopedInstances, unrestricted } from '../../src/instances/index.js';
import type { SqliteDatabase } from '../../src/storage/index.js';
import { instanceFileOf, repoRoot, startServer, tempDir } from '../helpers/servers.js';

const baseMigration = path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql');
// Enough work inside the migration for the event loop to turn several times while a worker runs it.
const slowMigration = `ALTER TABLE items ADD COLUMN note TEXT;
CREATE TABLE burn AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT sum(x) AS total FROM c;
DROP TABLE burn;
`;

const countItems = (db: SqliteDatabase, record: InstanceRecord) => ({ version: record.schema_version, items: Number(db.row('SELECT count(*) FROM items')![0]) });

const isPromise = (value: unknown): value is Promise<unknown> => value instanceof Promise;

/**
 * readNow, or withInstance when readNow sends the read through the catalog: a promise here says
 * readNow did. (A fan-out's way through the catalog, withInstanceNow, answers at once where it
 * can: see the last test.)
 */
function readSelected<T>(view: ScopedInstances, record: InstanceRecord, mark: number, fn: (db: SqliteDatabase, record: InstanceRecord) => T): T | Promise<T> {
  const now = view.readNow(record, mark, fn);
  return now === later ? view.withInstance(record.id, fn) : now;
}

/**
 * Instances a (2 items) and b (1 item), and any the `extra` mutation fields create, made at version
 * 1; then a server over them with version 2 (a slow migration) to move to, on one worker thread.
 * `damage` runs on the data directory in between, with no handle open.
 */
async function slowMigrationAhead(t: TestContext, extra: string, damage?: (dataDir: string) => void) {
  const v1 = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(v1, '0001_create_items.sql'));
  const first = await startServer(t, { migrationsDir: v1 });
  const created = await first.gql(`mutation { a: create_instance(id: "a") { id } b: create_instance(id: "b") { id } ${extra}
    x: insert_items(instance_id: "a", objects: [{id: 1}, {id: 2}]) { affected_rows } y: insert_items(instance_id: "b", objects: [{id: 1}]) { affected_rows } }`);
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  await first.close();
  damage?.(first.dataDir);

  const v2 = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(v2, '0001_create_items.sql'));
  fs.writeFileSync(path.join(v2, '0002_slow.sql'), slowMigration);
  const server = await startServer(t, { migrationsDir: v2, dataDir: first.dataDir, migrationThreads: 1 });
  const service = server.fleetql.instances();
  return { server, v2, dataDir: first.dataDir, service, view: new ScopedInstances(service, unrestricted) };
}

test('readNow answers at once only on a handle open since the selection, and sends the read the async way otherwise', async (t) => {
  const { server, dataDir, service, view } = await slowMigrationAhead(t, '');
  const recordOf = (selection: { records: readonly InstanceRecord[] }, id: string) => selection.records.find((r) => r.id === id)!;

  // No handle yet: the async way opens one. It was opened after this selection, so the next read
  // with the same selection goes the async way again; a selection made since answers at once.
  const first1 = view.select({});
  const cold = readSelected(view, recordOf(first1, 'a'), first1.mark, countItems);
  assert.ok(isPromise(cold), 'no handle: async');
  assert.deepEqual(await cold, { version: 1, items: 2 });
  assert.ok(isPromise(readSelected(view, recordOf(first1, 'a'), first1.mark, countItems)), 'handle opened after the selection: async');
  const second = view.select({});
  assert.deepEqual(readSelected(view, recordOf(second, 'a'), second.mark, countItems), { version: 1, items: 2 });

  // A migration running on a worker: once it shuts the instance out, no read runs at once, and
  // none does after it either (the handle it closed is not the one the selection saw).
  await readSelected(view, recordOf(second, 'b'), second.mark, countItems);
  const third = view.select({});
  const b = recordOf(third, 'b');
  assert.deepEqual(service.readNow(b, third.mark, countItems), { version: 1, items: 1 });
  let settled = false;
  const migrating = service.migrate('b', 2).finally(() => (settled = true));
  const outcomes: Array<'now' | 'later'> = [];
  let laterWhileMigrating = false;
  while (!settled) {
    const outcome = service.readNow(b, third.mark, countItems);
    outcomes.push(typeof outcome === 'symbol' ? 'later' : 'now');
    if (typeof outcome === 'symbol' && !settled) laterWhileMigrating = true;
    await nextTurn();
  }
  assert.deepEqual((await migrating).to, 2);
  assert.ok(laterWhileMigrating, 'a read during the migration was sent the async way');
  assert.ok(!outcomes.slice(outcomes.indexOf('later')).includes('now'), `no read at once after the instance was shut out: ${outcomes.join(' ')}`);
  const after = readSelected(view, b, third.mark, countItems);
  assert.ok(isPromise(after), 'handle closed by the migration: async');
  assert.equal((await after).items, 1);

  // Outside the principal's scope: not found, at once, without touching the instance.
  const tenant = new ScopedInstances(service, { instances: { ids: ['a'] }, write: false, lifecycle: false });
  assert.throws(() => readSelected(tenant, b, third.mark, countItems), (error: unknown) => isFleetqlError(error, 'INSTANCE_NOT_FOUND'));
  await server.close();

  // Lazy migrations: a record behind head goes the async way, which tries the migration again on
  // every access, also when its handle is warm. Here the migration fails (instance a holds rows it
  // forbids), so the instance is served at version 1 with its handle cached.
  const failing = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(failing, '0001_create_items.sql'));
  fs.writeFileSync(path.join(failing, '0002_fails.sql'), 'CREATE UNIQUE INDEX items_one ON items (coalesce(n, 0));\n');
  const lazy = await startServer(t, { migrationsDir: failing, dataDir, lazyMigrations: true, migrationThreads: 0 });
  const lazyView = new ScopedInstances(lazy.fleetql.instances(), unrestricted);
  const before = lazyView.select({});
  assert.deepEqual(await readSelected(lazyView, recordOf(before, 'a'), before.mark, countItems), { version: 1, items: 2 });
  const warm = lazyView.select({});
  const behind = recordOf(warm, 'a');
  assert.equal(behind.schema_version, 1);
  const retried = readSelected(lazyView, behind, warm.mark, countItems);
  assert.ok(isPromise(retried), 'a lazy migration due: async, though the handle is warm');
  assert.deepEqual(await retried, { version: 1, items: 2 });
});

test('withInstanceNow opens and reads at once, and waits (a promise) only for what must be waited for', async (t) => {
  const { server, v2, dataDir, service, view } = await slowMigrationAhead(t, 'c: create_instance(id: "c") { id } q: create_instance(id: "q") { id }', (dir) =>
    fs.writeFileSync(instanceFileOf(dir, 'c'), Buffer.alloc(8192, 0xab)),
  );

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
  const lazy = await startServer(t, { migrationsDir: v2, dataDir, lazyMigrations: true, migrationThreads: 1 });
  const lazyView = new ScopedInstances(lazy.fleetql.instances(), unrestricted);
  const due = lazyView.withInstanceNow('q', countItems);
  assert.ok(due instanceof Promise, 'a lazy migration due: a promise');
  assert.deepEqual(await due, { version: 2, items: 0 });
  assert.deepEqual(lazyView.withInstanceNow('q', countItems), { version: 2, items: 0 }, 'migrated: at once');
});
