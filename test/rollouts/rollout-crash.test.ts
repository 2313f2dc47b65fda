import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'libsql';
import { filesUnder, repoRoot, spawnServer, tempDir, type SpawnedServer } from '../helpers/servers.js';

const baseMigration = path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql');

async function stop(server: SpawnedServer): Promise<void> {
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
}

/** A server on a new data dir at version 1 holding `count` instances with one item each; stopped again. */
async function fleetAtVersion1(t: Parameters<typeof tempDir>[0], prefix: string, count: number, item: (index: number) => string) {
  const migrationsDir = tempDir(t);
  const dataDir = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(migrationsDir, '0001_create_items.sql'));
  const args = ['--no-demo', '--data', dataDir, '--migrations', migrationsDir];
  const first = await spawnServer(t, { args });
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  for (let i = 0; i < ids.length; i += 50) {
    const mutation = ids
      .slice(i, i + 50)
      .map((id, j) => `c${j}: create_instance(id: "${id}") { id } i${j}: insert_items(instance_id: "${id}", objects: [${item(i + j)}]) { affected_rows }`)
      .join('\n');
    assert.equal((await first.gql(`mutation { ${mutation} }`)).errors, undefined);
  }
  await stop(first);
  return { migrationsDir, args, ids };
}

/** The schema version inside a database file. */
function versionIn(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT max(version) AS version FROM _fleetql_migrations').get() as { version: number }).version;
  } finally {
    db.close();
  }
}

/** Rewrites every item, so a rollback is seen to restore the snapshot. */
const rewriteMigration = "ALTER TABLE items ADD COLUMN note TEXT;\nUPDATE items SET s = 'rewritten', note = 'v2';\n";

/**
 * A fleet at version 1 (items `s: "original"`), migration 2 rewriting them, and a rollout to 2 in a
 * server that kills itself (SIGKILL) at crash point `crashAt`: what is on disk then.
 */
async function rolloutKilledAt(t: Parameters<typeof tempDir>[0], prefix: string, count: number, crashAt: string) {
  const { migrationsDir, args, ids } = await fleetAtVersion1(t, prefix, count, (i) => `{id: 1, n: ${i}, s: "original"}`);
  const dataDir = args[args.indexOf('--data') + 1]!;
  fs.writeFileSync(path.join(migrationsDir, '0002_rewrite.sql'), rewriteMigration);
  const crashing = await spawnServer(t, { args, env: { FLEETQL_CRASH_AT: crashAt, FLEETQL_MIGRATION_THREADS: '2' } });
  const id = (await crashing.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 0, batch_size: 1000, concurrency: 8}) { id } }`)).data!['start_rollout'].id as string;
  assert.equal((await crashing.exited).signal, 'SIGKILL');
  return { args, ids, dataDir, id };
}

test('kill -9 in the middle of a rollout over 400 instances: a restart resumes it, completes it, counts are right, no instance is half-migrated', async (t) => {
  const { migrationsDir, args, ids } = await fleetAtVersion1(t, 'crash', 400, (i) => `{id: 1, n: ${i}}`);

  // Version 2 has several statements, so a half-applied migration would be visible.
  fs.writeFileSync(
    path.join(migrationsDir, '0002_add_note_and_index.sql'),
    'ALTER TABLE items ADD COLUMN note TEXT;\nUPDATE items SET note = \'migrated\';\nCREATE INDEX items_note ON items (note);\nCREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT NOT NULL);\n',
  );
  const second = await spawnServer(t, { args });
  const started = await second.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 1, batch_size: 50, concurrency: 1}) { id } }`);
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  const id = started.data!['start_rollout'].id as string;
  let atKill: { done: number; remaining: number } | undefined;
  for (let poll = 0; poll < 5000; poll++) {
    const progress = await second.gql(`{ rollout(id: "${id}") { counts { done remaining } } }`);
    const counts = progress.data!['rollout'].counts;
    if (counts.done >= 40 || counts.remaining === 0) {
      second.child.kill('SIGKILL');
      atKill = counts;
      break;
    }
  }
  assert.equal((await second.exited).signal, 'SIGKILL');
  t.diagnostic(`killed with ${atKill?.done} done, ${atKill?.remaining} remaining (by the last poll)`);
  assert.ok(atKill !== undefined && atKill.remaining > 0, 'the kill landed in the middle of the rollout');

  const third = await spawnServer(t, { args });
  let final: any;
  for (let poll = 0; poll < 2000; poll++) {
    final = (await third.gql(`{ rollout(id: "${id}") { state counts { total done failed skipped remaining } } }`)).data!['rollout'];
    if (final.state !== 'RUNNING') break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.equal(final.state, 'COMPLETED', 'the restart resumed the rollout by itself');
  assert.deepEqual(final.counts, { total: 400, done: 400, failed: 0, skipped: 0, remaining: 0 });

  const catalog = await third.gql(`{ instances_aggregate(where: {schema_version: {_eq: 2}}) { aggregate { count } } }`);
  assert.equal(catalog.data!['instances_aggregate'].aggregate.count, 400, 'the catalog has every instance at the target');
  // Every file, read on its own: both migrations recorded, every statement of version 2 applied.
  for (let i = 0; i < ids.length; i += 100) {
    const query = ids
      .slice(i, i + 100)
      .map((instanceId, j) => `i${j}: instance(id: "${instanceId}") { migrations_applied { version } items { note } audit_aggregate { aggregate { count } } }`)
      .join('\n');
    const result = await third.gql(`{ ${query} }`);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
    for (const instance of Object.values(result.data!)) {
      assert.deepEqual(instance, { migrations_applied: [{ version: 1 }, { version: 2 }], items: [{ note: 'migrated' }], audit_aggregate: { aggregate: { count: 0 } } });
    }
  }
  await stop(third);
});

test('kill -9 in the middle of a rollback: a restart resumes it and every instance is back at its snapshot', async (t) => {
  const { migrationsDir, args, ids } = await fleetAtVersion1(t, 'undo', 300, (i) => `{id: 1, n: ${i}, s: "original"}`);
  fs.writeFileSync(path.join(migrationsDir, '0002_rewrite.sql'), rewriteMigration);
  const second = await spawnServer(t, { args });
  const forward = (await second.gql(`mutation { start_rollout(target_version: 2, strategy: {batch_size: 100, concurrency: 4}) { id } }`)).data!['start_rollout'].id as string;
  for (let poll = 0; poll < 2000; poll++) {
    const state = (await second.gql(`{ rollout(id: "${forward}") { state } }`)).data!['rollout'].state;
    if (state === 'COMPLETED') break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const rollback = (await second.gql(`mutation { rollback_rollout(id: "${forward}") { id } }`)).data!['rollback_rollout'].id as string;
  let atKill: { done: number; remaining: number } | undefined;
  for (let poll = 0; poll < 5000; poll++) {
    const counts = (await second.gql(`{ rollout(id: "${rollback}") { counts { done remaining } } }`)).data!['rollout'].counts;
    if (counts.done >= 30 || counts.remaining === 0) {
      second.child.kill('SIGKILL');
      atKill = counts;
      break;
    }
  }
  assert.equal((await second.exited).signal, 'SIGKILL');
  assert.ok(atKill !== undefined && atKill.remaining > 0, `the kill landed in the middle of the rollback (${JSON.stringify(atKill)})`);

  const third = await spawnServer(t, { args });
  let final: any;
  for (let poll = 0; poll < 2000; poll++) {
    final = (await third.gql(`{ rollout(id: "${rollback}") { state counts { total done failed remaining } failures { instance_id code message } } }`)).data!['rollout'];
    if (final.state !== 'RUNNING') break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.equal(final.state, 'COMPLETED', JSON.stringify(final.failures?.slice(0, 3)));
  assert.deepEqual(final.counts, { total: 300, done: 300, failed: 0, remaining: 0 });
  for (let i = 0; i < ids.length; i += 100) {
    const query = ids
      .slice(i, i + 100)
      .map((instanceId, j) => `i${j}: instance(id: "${instanceId}") { schema_version migrations_applied { version } items { s note } }`)
      .join('\n');
    const result = await third.gql(`{ ${query} }`);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
    for (const instance of Object.values(result.data!)) {
      assert.deepEqual(instance, { schema_version: 1, migrations_applied: [{ version: 1 }], items: [{ s: 'original', note: null }] });
    }
  }
  await stop(third);
});

/** Waits until the rollout leaves RUNNING and returns its view. */
async function settle(server: SpawnedServer, id: string): Promise<any> {
  for (let poll = 0; poll < 4000; poll++) {
    const view = (await server.gql(`{ rollout(id: "${id}") { state counts { total done failed skipped remaining } failures { instance_id code message } } }`)).data!['rollout'];
    if (view.state !== 'RUNNING') return view;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`rollout ${id} still running`);
}

test('kill -9 after instances migrated but before the rollout recorded them: the restart recognises them from their files, and a rollback restores them from their snapshots', async (t) => {
  // The process kills itself the first time the rollout is about to record settled instances.
  const { args, ids, dataDir, id } = await rolloutKilledAt(t, 'unrecorded', 120, 'rollout:recording');

  // On disk now: some files at version 2, and a catalog that has recorded none of them.
  // Opened as the restart would open them (a killed migration's hot journal is rolled back).
  const catalog = new Database(path.join(dataDir, 'catalog.db'));
  const recorded = catalog.prepare(`SELECT count(*) AS n FROM rollout_instances WHERE rollout_id = ? AND state != 'pending'`).get([Number(id)]) as { n: number };
  const atVersion2 = catalog.prepare(`SELECT count(*) AS n FROM instances WHERE schema_version = 2`).get() as { n: number };
  catalog.close();
  let migratedFiles = 0;
  for (const file of filesUnder(path.join(dataDir, 'instances')).filter((name) => name.endsWith('.db'))) {
    if (versionIn(path.join(dataDir, 'instances', file)) === 2) migratedFiles += 1;
  }
  t.diagnostic(`killed with ${migratedFiles} instance file(s) migrated and none recorded`);
  assert.deepEqual({ recorded: recorded.n, atVersion2: atVersion2.n }, { recorded: 0, atVersion2: 0 });
  assert.ok(migratedFiles > 0 && migratedFiles < ids.length, `the kill landed between migrating and recording (${migratedFiles} migrated)`);

  const restarted = await spawnServer(t, { args, env: { FLEETQL_MIGRATION_THREADS: '2' } });
  const forward = await settle(restarted, id);
  assert.equal(forward.state, 'COMPLETED', JSON.stringify(forward.failures?.slice(0, 3)));
  assert.deepEqual(forward.counts, { total: 120, done: 120, failed: 0, skipped: 0, remaining: 0 });

  // The instances migrated before the kill took their snapshot before migrating: a rollback finds every one.
  const rollback = (await restarted.gql(`mutation { rollback_rollout(id: "${id}") { id } }`)).data!['rollback_rollout'].id as string;
  const back = await settle(restarted, rollback);
  assert.equal(back.state, 'COMPLETED', JSON.stringify(back.failures?.slice(0, 3)));
  assert.deepEqual(back.counts, { total: 120, done: 120, failed: 0, skipped: 0, remaining: 0 });
  for (let i = 0; i < ids.length; i += 60) {
    const query = ids
      .slice(i, i + 60)
      .map((instanceId, j) => `i${j}: instance(id: "${instanceId}") { schema_version migrations_applied { version } items { s note } }`)
      .join('\n');
    const result = await restarted.gql(`{ ${query} }`);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
    for (const instance of Object.values(result.data!)) {
      assert.deepEqual(instance, { schema_version: 1, migrations_applied: [{ version: 1 }], items: [{ s: 'original', note: null }] });
    }
  }
  await stop(restarted);
});

test('kill -9 with a migrated copy made but not yet renamed over its file: that file is untouched, the restart migrates it again over the scrap, completes, and a rollback restores every instance', async (t) => {
  const { args, ids, dataDir, id } = await rolloutKilledAt(t, 'swapping', 40, 'rollout:swapping');
  const instances = path.join(dataDir, 'instances');
  const files = filesUnder(instances);
  const scraps = files.filter((name) => name.endsWith('.migrating'));
  assert.ok(scraps.length > 0, 'a migrated copy is left');
  for (const scrap of scraps) {
    assert.equal(versionIn(path.join(instances, scrap)), 2, 'the copy is migrated');
    assert.equal(versionIn(path.join(instances, scrap.slice(0, -'.migrating'.length))), 1, 'its instance file is not');
  }

  const restarted = await spawnServer(t, { args, env: { FLEETQL_MIGRATION_THREADS: '2' } });
  const forward = await settle(restarted, id);
  assert.equal(forward.state, 'COMPLETED', JSON.stringify(forward.failures?.slice(0, 3)));
  assert.deepEqual(forward.counts, { total: 40, done: 40, failed: 0, skipped: 0, remaining: 0 });
  assert.deepEqual(filesUnder(instances).filter((name) => !name.endsWith('.db')), [], 'no scrap is left');
  const rollback = (await restarted.gql(`mutation { rollback_rollout(id: "${id}") { id } }`)).data!['rollback_rollout'].id as string;
  const back = await settle(restarted, rollback);
  assert.equal(back.state, 'COMPLETED', JSON.stringify(back.failures?.slice(0, 3)));
  const query = ids.map((instanceId, j) => `i${j}: instance(id: "${instanceId}") { schema_version items { s note } }`).join('\n');
  const result = await restarted.gql(`{ ${query} }`);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
  for (const instance of Object.values(result.data!)) assert.deepEqual(instance, { schema_version: 1, items: [{ s: 'original', note: null }] });
  await stop(restarted);
});
