import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { filesUnder, repoRoot, startServer, tempDir, type InProcessServer } from '../helpers/servers.js';
import { InstanceLayout } from '../../src/instances/instance-layout.js';
import type { InstanceId } from '../../src/instances/instance-id.js';
import { sameFile } from '../../src/storage/index.js';
import Database from 'libsql';

const baseMigration = path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql');

/** A migrations dir at version 1 (items), and a function adding later versions to it. */
function migrations(t: Parameters<typeof tempDir>[0]): { dir: string; add: (name: string, sql: string) => void } {
  const dir = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(dir, '0001_create_items.sql'));
  return { dir, add: (name, sql) => fs.writeFileSync(path.join(dir, name), sql) };
}

async function createFleet(server: InProcessServer, ids: readonly string[], items: (id: string, index: number) => string): Promise<void> {
  for (let i = 0; i < ids.length; i += 50) {
    const batch = ids.slice(i, i + 50);
    const mutation = batch.map((id, j) => `c${j}: create_instance(id: "${id}", labels: {tier: "${(i + j) % 2 ? 'odd' : 'even'}"}) { id } i${j}: insert_items(instance_id: "${id}", objects: [${items(id, i + j)}]) { affected_rows }`).join('\n');
    const result = await server.gql(`mutation { ${mutation} }`);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
  }
}

const rolloutFields = 'id state target_version pause_reason counts { total done failed skipped remaining } failures { instance_id wave code message }';

/** Where a data dir keeps instance files and rollout snapshots. */
function layoutOf(dataDir: string): InstanceLayout & { of: (id: string) => { live: string; snapshot: (rolloutId: number | string) => string } } {
  const layout = new InstanceLayout(path.join(dataDir, 'instances'), path.join(dataDir, 'snapshots'));
  return Object.assign(layout, {
    of: (id: string) => ({ live: layout.fileOf(id as InstanceId), snapshot: (rolloutId: number | string) => layout.snapshotOf(Number(rolloutId), id as InstanceId) }),
  });
}

/** The schema version inside a database file. */
function versionInFile(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return Number((db.prepare('SELECT max(version) AS v FROM _fleetql_migrations').get() as { v: number }).v);
  } finally {
    db.close();
  }
}

async function waitWhileRunning(server: InProcessServer, id: string): Promise<Record<string, any>> {
  await server.fleetql.rollouts().settled(Number(id));
  const result = await server.gql(`{ rollout(id: "${id}") { ${rolloutFields} } }`);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  return result.data!['rollout'];
}

test('a rollout over 500 instances pauses on failures, keeps failed instances serving at their old version, and completes once they are fixed', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = Array.from({ length: 500 }, (_, i) => `svc-${String(i).padStart(3, '0')}`);
  // Every 25th instance holds a duplicate value that the coming unique index rejects.
  const bad = new Set(ids.filter((_, i) => i % 25 === 7));
  await createFleet(first, ids, (id) => `{id: 1, n: 1, s: "a"}, {id: 2, n: 2, s: "${bad.has(id) ? 'a' : 'b'}"}`);
  await first.close();

  add('0002_unique_s.sql', 'CREATE UNIQUE INDEX items_unique_s ON items (s);\n');
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const versions = await server.gql(`{ migrations { version instances is_head } }`);
  assert.deepEqual(versions.data!['migrations'], [
    { version: 1, instances: 500, is_head: false },
    { version: 2, instances: 0, is_head: true },
  ]);

  const started = await server.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 5, batch_size: 100, concurrency: 8, max_failures: 3}) { ${rolloutFields} } }`);
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  const id = started.data!['start_rollout'].id as string;
  assert.equal(started.data!['start_rollout'].counts.total, 500);

  // Reads keep answering while it runs, and a fleet query over the mixed fleet stays exact.
  const during = await server.gql(`{ fleet { items_aggregate { aggregate { count sum { n } } coverage { failed } } } }`);
  assert.deepEqual(during.data!['fleet'].items_aggregate, { aggregate: { count: 1000, sum: { n: 1500 } }, coverage: { failed: 0 } }, JSON.stringify(during.errors?.slice(0, 3)));

  const paused = await waitWhileRunning(server, id);
  assert.equal(paused.state, 'PAUSED');
  assert.match(paused.pause_reason, /more than max_failures 3/);
  assert.ok(paused.counts.failed >= 4, `failed ${paused.counts.failed}`);
  assert.ok(paused.counts.remaining > 0, 'it paused before the end');
  for (const failure of paused.failures) {
    assert.ok(bad.has(failure.instance_id), `${failure.instance_id} is one of the bad ones`);
    assert.equal(failure.code, 'MIGRATION_FAILED');
    assert.match(failure.message, /UNIQUE/);
  }
  const failedId = paused.failures[0].instance_id as string;
  const failedNow = await server.gql(`{ instance(id: "${failedId}") { schema_version migrations_applied { version } items(order_by: [{id: asc}]) { id s } } }`);
  assert.deepEqual(failedNow.data!['instance'], { schema_version: 1, migrations_applied: [{ version: 1 }], items: [{ id: 1, s: 'a' }, { id: 2, s: 'a' }] }, 'rolled back to its old version, still served');

  // A second rollout over instances this one holds is refused.
  const conflict = await server.gql(`mutation { start_rollout(target_version: 2, where: {labels: {_contains: {tier: "odd"}}}) { id } }`);
  assert.equal(conflict.errors?.[0]?.extensions?.['code'], 'ROLLOUT_CONFLICT');

  // Fix the data of every bad instance through the API, then resume.
  for (const badId of bad) {
    const fixed = await server.gql(`mutation { update_items_by_pk(instance_id: "${badId}", pk_columns: {id: 2}, _set: {s: "fixed"}) { s } }`);
    assert.equal(fixed.errors, undefined);
  }
  const resumed = await server.gql(`mutation { resume_rollout(id: "${id}") { state } }`);
  assert.equal(resumed.data!['resume_rollout'].state, 'RUNNING');
  const done = await waitWhileRunning(server, id);
  assert.equal(done.state, 'COMPLETED');
  assert.deepEqual(done.counts, { total: 500, done: 500, failed: 0, skipped: 0, remaining: 0 });
  assert.deepEqual(done.failures, []);

  const atTarget = await server.gql(`{ instances_aggregate(where: {schema_version: {_eq: 2}}) { aggregate { count } } migrations { version instances } }`);
  assert.equal(atTarget.data!['instances_aggregate'].aggregate.count, 500);
  assert.deepEqual(atTarget.data!['migrations'], [
    { version: 1, instances: 0 },
    { version: 2, instances: 500 },
  ]);
  const check = await server.gql(`{ instance(id: "${failedId}") { schema_version migrations_applied { version } } }`);
  assert.deepEqual(check.data!['instance'], { schema_version: 2, migrations_applied: [{ version: 1 }, { version: 2 }] });
  // The index is really there: a duplicate is now refused.
  const dup = await server.gql(`mutation { insert_items(instance_id: "${failedId}", objects: [{id: 3, s: "fixed"}]) { affected_rows } }`);
  assert.equal(dup.errors?.[0]?.extensions?.['code'], 'CONSTRAINT_VIOLATION');
});

test('pause, resume, abort, canary pause, bad arguments', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = Array.from({ length: 40 }, (_, i) => `app-${String(i).padStart(2, '0')}`);
  await createFleet(first, ids, () => `{id: 1, n: 1}`);
  await first.close();
  add('0002_add_note.sql', 'ALTER TABLE items ADD COLUMN note TEXT;\n');
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });

  for (const [args, code] of [
    ['target_version: 3', 'INVALID_ARGUMENT'],
    ['target_version: 0', 'INVALID_ARGUMENT'],
    ['target_version: 2, strategy: {batch_size: 0}', 'INVALID_ARGUMENT'],
    ['target_version: 2, strategy: {concurrency: 1000}', 'INVALID_ARGUMENT'],
  ] as const) {
    const bad = await server.gql(`mutation { start_rollout(${args}) { id } }`);
    assert.equal(bad.errors?.[0]?.extensions?.['code'], code, args);
  }
  assert.equal((await server.gql(`{ rollout(id: "999") { id } }`)).errors?.[0]?.extensions?.['code'], 'ROLLOUT_NOT_FOUND');
  assert.equal((await server.gql(`{ rollout(id: "x") { id } }`)).errors?.[0]?.extensions?.['code'], 'ROLLOUT_NOT_FOUND');

  const canary = await server.gql(`mutation { start_rollout(target_version: 2, where: {labels: {_contains: {tier: "even"}}}, strategy: {canary: 3, batch_size: 5, pause_after_canary: true}) { id counts { total } } }`);
  const id = canary.data!['start_rollout'].id as string;
  assert.equal(canary.data!['start_rollout'].counts.total, 20, 'only the even tier');
  const afterCanary = await waitWhileRunning(server, id);
  assert.equal(afterCanary.state, 'PAUSED');
  assert.equal(afterCanary.pause_reason, 'canary wave done');
  assert.equal(afterCanary.counts.done, 3);

  const aborted = await server.gql(`mutation { abort_rollout(id: "${id}") { state counts { done skipped remaining } } }`);
  assert.deepEqual(aborted.data!['abort_rollout'], { state: 'ABORTED', counts: { done: 3, skipped: 17, remaining: 0 } });
  assert.equal((await server.gql(`mutation { resume_rollout(id: "${id}") { id } }`)).errors?.[0]?.extensions?.['code'], 'INVALID_ARGUMENT');

  // The aborted rollout no longer holds its instances: a new one covers the rest of the fleet.
  const all = await server.gql(`mutation { start_rollout(target_version: 2, strategy: {batch_size: 10}) { id counts { total } } }`);
  assert.equal(all.data!['start_rollout'].counts.total, 37, 'instances already at 2 are not selected');
  const finished = await waitWhileRunning(server, all.data!['start_rollout'].id);
  assert.equal(finished.state, 'COMPLETED');
  const listed = await server.gql(`{ rollouts { id state } completed: rollouts(state: [COMPLETED]) { id } }`);
  assert.deepEqual(listed.data!['rollouts'].map((r: any) => r.state), ['COMPLETED', 'ABORTED']);
  assert.equal(listed.data!['completed'].length, 1);
  const notes = await server.gql(`{ fleet { items_aggregate(where: {note: {_is_null: true}}) { aggregate { count } } } instances_aggregate(where: {schema_version: {_eq: 2}}) { aggregate { count } } }`);
  assert.equal(notes.data!['fleet'].items_aggregate.aggregate.count, 40);
  assert.equal(notes.data!['instances_aggregate'].aggregate.count, 40);
});

test('rollout_progress streams the rollout over SSE until it completes', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  await createFleet(first, Array.from({ length: 30 }, (_, i) => `sse-${i}`), () => `{id: 1}`);
  await first.close();
  add('0002_add_note.sql', 'ALTER TABLE items ADD COLUMN note TEXT;\n');
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const started = await server.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 2, batch_size: 5, concurrency: 1, pause_after_canary: true}) { id } }`);
  const id = started.data!['start_rollout'].id as string;
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: `subscription { rollout_progress(id: "${id}") { state counts { done remaining } } }` }),
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
  await server.fleetql.rollouts().settled(Number(id)); // paused after the canary
  assert.equal((await server.gql(`mutation { resume_rollout(id: "${id}") { state } }`)).data!['resume_rollout'].state, 'RUNNING');
  let text = '';
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) text += decoder.decode(read.value);
  const events = text
    .split('\n')
    .filter((line) => line.startsWith('data: {'))
    .map((line) => JSON.parse(line.slice(6)).data.rollout_progress);
  assert.ok(events.length >= 2, `${events.length} events`);
  assert.ok(events.some((e) => e.state === 'PAUSED'), 'the canary pause was seen');
  assert.deepEqual(events.at(-1), { state: 'COMPLETED', counts: { done: 30, remaining: 0 } }, 'the stream ends with the completed rollout');
});

test('rollback_rollout puts migrated instances back to their snapshots; instances written since are named and kept unless force', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = Array.from({ length: 20 }, (_, i) => `rb-${String(i).padStart(2, '0')}`);
  await createFleet(first, ids, (_id, i) => `{id: 1, n: ${i}, s: "before"}`);
  await first.close();
  add('0002_reshape.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\nUPDATE items SET s = 'after';\nCREATE TABLE extra (id INTEGER PRIMARY KEY);\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });

  const started = await server.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 2, batch_size: 6, max_failures: 10}) { id } }`);
  const id = started.data!['start_rollout'].id as string;
  assert.equal((await waitWhileRunning(server, id)).state, 'COMPLETED');
  const written = ids.slice(0, 3);
  for (const writtenId of written) {
    assert.equal((await server.gql(`mutation { insert_items(instance_id: "${writtenId}", objects: [{id: 2, s: "written after the migration"}]) { affected_rows } }`)).errors, undefined);
  }

  const rollback = await server.gql(`mutation { rollback_rollout(id: "${id}") { id kind rolls_back force counts { total } } }`);
  assert.equal(rollback.errors, undefined, JSON.stringify(rollback.errors));
  const rollbackId = rollback.data!['rollback_rollout'].id as string;
  assert.deepEqual({ ...rollback.data!['rollback_rollout'], id: undefined }, { id: undefined, kind: 'ROLLBACK', rolls_back: id, force: false, counts: { total: 20 } });
  const refused = await waitWhileRunning(server, rollbackId);
  assert.equal(refused.state, 'FAILED');
  assert.deepEqual(refused.counts, { total: 20, done: 17, failed: 3, skipped: 0, remaining: 0 });
  assert.deepEqual(refused.failures.map((f: any) => [f.instance_id, f.code]), written.map((w) => [w, 'WRITTEN_SINCE_MIGRATION']));

  // The 17 are back: version 1 in the catalog and in the file, data as it was before the migration.
  const back = await server.gql(`{ instance(id: "${ids[10]}") { schema_version migrations_applied { version } items { id n s note } extra { id } } }`);
  assert.deepEqual(back.data!['instance'], { schema_version: 1, migrations_applied: [{ version: 1 }], items: [{ id: 1, n: 10, s: 'before', note: null }], extra: [] });
  const kept = await server.gql(`{ instance(id: "${written[0]}") { schema_version items(order_by: [{id: asc}]) { id s } } }`);
  assert.deepEqual(kept.data!['instance'], { schema_version: 2, items: [{ id: 1, s: 'after' }, { id: 2, s: 'written after the migration' }] }, 'refused instances keep their writes');

  const forced = await server.gql(`mutation { rollback_rollout(id: "${id}", force: true) { id counts { total } } }`);
  assert.equal(forced.data!['rollback_rollout'].counts.total, 3, 'only the instances still migrated');
  const done = await waitWhileRunning(server, forced.data!['rollback_rollout'].id);
  assert.equal(done.state, 'COMPLETED');
  const dropped = await server.gql(`{ instance(id: "${written[0]}") { schema_version items { id s } } instances_aggregate(where: {schema_version: {_eq: 1}}) { aggregate { count } } }`);
  assert.deepEqual(dropped.data!['instance'], { schema_version: 1, items: [{ id: 1, s: 'before' }] });
  assert.equal(dropped.data!['instances_aggregate'].aggregate.count, 20);
  const previous = await server.gql(`{ rollout(id: "${rollbackId}") { state } }`);
  assert.equal(previous.data!['rollout'].state, 'ABORTED', 'the refused rollback was superseded');
});

test('lazy mode migrates an instance behind head on first access, before serving it', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  await createFleet(first, ['lazy-a', 'lazy-b'], () => `{id: 1, n: 1}`);
  await first.close();
  add('0002_add_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'lazy';\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir, lazyMigrations: true });
  const before = await server.gql(`{ instances { id schema_version } }`);
  assert.deepEqual(before.data!['instances'], [
    { id: 'lazy-a', schema_version: 1 },
    { id: 'lazy-b', schema_version: 1 },
  ], 'listing the catalog touches no instance');
  const read = await server.gql(`{ instance(id: "lazy-a") { items { id note } migrations_applied { version } } }`);
  assert.deepEqual(read.data!['instance'], { items: [{ id: 1, note: 'lazy' }], migrations_applied: [{ version: 1 }, { version: 2 }] }, 'served at head on first access');
  const after = await server.gql(`{ instances { id schema_version } }`);
  assert.deepEqual(after.data!['instances'], [
    { id: 'lazy-a', schema_version: 2 },
    { id: 'lazy-b', schema_version: 1 },
  ]);
  const write = await server.gql(`mutation { insert_items(instance_id: "lazy-b", objects: [{id: 2, note: "new column"}]) { returning { note } } }`);
  assert.deepEqual(write.data!['insert_items'].returning, [{ note: 'new column' }], 'a write needing the new column migrates first too');
});

test('strategy.snapshots false: no snapshot is kept, the rollout completes, and a rollback is refused without changing anything', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = Array.from({ length: 12 }, (_, i) => `ns-${String(i).padStart(2, '0')}`);
  await createFleet(first, ids, (_id, i) => `{id: 1, n: ${i}, s: "x"}`);
  await first.close();
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\nCREATE INDEX items_note ON items (note);\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });

  const started = await server.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 2, batch_size: 5, snapshots: false}) { id strategy { snapshots concurrency } } }`);
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  assert.deepEqual(started.data!['start_rollout'].strategy, { snapshots: false, concurrency: 8 });
  const id = started.data!['start_rollout'].id as string;
  const done = await waitWhileRunning(server, id);
  assert.equal(done.state, 'COMPLETED');
  assert.deepEqual(done.counts, { total: 12, done: 12, failed: 0, skipped: 0, remaining: 0 });
  assert.equal(fs.existsSync(path.join(server.dataDir, 'snapshots', `rollout-${id}`)), false, 'no snapshot directory for this rollout');

  const refused = await server.gql(`mutation { rollback_rollout(id: "${id}") { id } }`);
  assert.equal(refused.errors?.[0]?.extensions?.['code'], 'SNAPSHOT_MISSING');
  assert.match(refused.errors![0]!.message, /without snapshots/);
  const after = await server.gql(`{ rollouts { id kind state } instances_aggregate(where: {schema_version: {_eq: 2}}) { aggregate { count } } instance(id: "ns-03") { items { n note } } }`);
  assert.deepEqual(after.data!['rollouts'], [{ id, kind: 'FORWARD', state: 'COMPLETED' }], 'no rollback rollout was created');
  assert.equal(after.data!['instances_aggregate'].aggregate.count, 12);
  assert.deepEqual(after.data!['instance'].items, [{ n: 3, note: 'v2' }]);
});

test('snapshots: as the migrated copy replaces each file, the old file is kept under a second name (no copy of its own); one kept where fleetql kept them before is still restored; a link that still names the live file, or none, is refused', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = ['sn-a', 'sn-b', 'sn-c', 'sn-d'];
  await createFleet(first, ids, (_id, i) => `{id: 1, n: ${i}, s: "before"}`);
  await first.close();
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const started = await server.gql(`mutation { start_rollout(target_version: 2) { id } }`);
  const id = started.data!['start_rollout'].id as string;
  assert.equal((await waitWhileRunning(server, id)).state, 'COMPLETED');

  // One entry per instance, nothing else: the file as it was, no longer the live one.
  const layout = layoutOf(server.dataDir);
  const snapshots = layout.snapshotsOfRollout(Number(id));
  assert.deepEqual(fs.readdirSync(snapshots).sort(), ids.map((instanceId) => `${instanceId}.db`));
  for (const instanceId of ids) {
    const { live, snapshot } = layout.of(instanceId);
    assert.ok(!sameFile(live, snapshot(id)), `${instanceId}: the snapshot is not the live file`);
    assert.deepEqual([versionInFile(snapshot(id)), versionInFile(live)], [1, 2]);
  }
  assert.deepEqual(filesUnder(layout.root).filter((name) => !name.endsWith('.db')), [], 'no scrap is left beside the instance files');
  // sn-a's snapshot where fleetql kept them before (spread like instance files); sn-b's where it
  // is; sn-c's a link to its live file (made ahead, never migrated); sn-d's gone.
  const legacy = layout.legacySnapshotOf(Number(id), 'sn-a' as InstanceId);
  fs.mkdirSync(path.dirname(legacy), { recursive: true });
  fs.renameSync(layout.of('sn-a').snapshot(id), legacy);
  fs.rmSync(layout.of('sn-c').snapshot(id));
  fs.linkSync(layout.of('sn-c').live, layout.of('sn-c').snapshot(id));
  fs.rmSync(layout.of('sn-d').snapshot(id));
  await server.close();
  const restarted = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });

  const rollback = await restarted.gql(`mutation { rollback_rollout(id: "${id}") { id } }`);
  const result = await waitWhileRunning(restarted, rollback.data!['rollback_rollout'].id);
  assert.deepEqual(result.failures.map((f: any) => [f.instance_id, f.code]).sort(), [['sn-c', 'SNAPSHOT_MISSING'], ['sn-d', 'SNAPSHOT_MISSING']]);
  const after = await restarted.gql(`{ ${ids.map((instanceId, i) => `i${i}: instance(id: "${instanceId}") { schema_version items { s } }`).join(' ')} }`);
  assert.deepEqual(Object.values(after.data!).map((instance: any) => instance.schema_version), [1, 1, 2, 2]);
  assert.deepEqual(Object.values(after.data!).map((instance: any) => instance.items[0].s), ['before', 'before', 'before', 'before']);
});

test('snapshot entries are made a batch ahead, past the end of a wave too (the canary runs while the next wave is linked), but not past a canary the rollout pauses after', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = ['la-a', 'la-b', 'la-c', 'la-d', 'la-e', 'la-f'];
  // la-a, the canary, holds a duplicate that the coming unique index rejects.
  await createFleet(first, ids, (id) => `{id: 1, n: 1, s: "x"}, {id: 2, n: 2, s: "${id === 'la-a' ? 'x' : 'y'}"}`);
  await first.close();
  add('0002_unique_s.sql', 'CREATE UNIQUE INDEX items_unique_s ON items (s);\n');
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const layout = layoutOf(server.dataDir);
  const linked = (rolloutId: string) => ids.filter((instanceId) => sameFile(layout.of(instanceId).snapshot(rolloutId), layout.of(instanceId).live));
  const paused = await server.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 1, pause_after_canary: true}) { id } }`);
  const pausedId = paused.data!['start_rollout'].id as string;
  const afterCanary = await waitWhileRunning(server, pausedId);
  assert.equal(afterCanary.state, 'PAUSED');
  assert.equal(afterCanary.counts.failed, 1);
  await server.fleetql.rollouts().abort(Number(pausedId));
  const failing = await server.gql(`mutation { start_rollout(target_version: 2, strategy: {canary: 1, max_failures: 0}) { id } }`);
  const failingId = failing.data!['start_rollout'].id as string;
  const afterFailure = await waitWhileRunning(server, failingId);
  assert.deepEqual([afterFailure.state, afterFailure.counts.failed, afterFailure.counts.done], ['PAUSED', 1, 0]);
  await server.close(); // the migration threads finish the entries already asked for
  assert.deepEqual(fs.readdirSync(layout.snapshotsOfRollout(Number(pausedId))), ['la-a.db'], 'nothing past a canary the rollout pauses after');
  assert.deepEqual(linked(failingId), ids, 'the next wave was linked while the canary ran');
});

test('a link made ahead becomes the snapshot only as the migrated copy replaces the file: writes after it are kept, a link to a file replaced since is made again, one never migrated is refused', async (t) => {
  const { dir, add } = migrations(t);
  const server = await startServer(t, { migrationsDir: dir });
  const ids = ['pk-a', 'pk-b', 'pk-c'];
  await createFleet(server, ids, (_id, i) => `{id: 1, n: ${i}, s: "before"}`);
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\n");
  await server.close();
  const restarted = await startServer(t, { migrationsDir: dir, dataDir: server.dataDir });
  const layout = layoutOf(server.dataDir);
  const instances = restarted.fleetql.instances();
  const rolloutId = 9001;
  const ahead = await instances.prepareSnapshots(rolloutId, ids);
  assert.equal(ahead.created, true);
  for (const id of ids) assert.ok(sameFile(layout.of(id).snapshot(rolloutId), layout.of(id).live), `${id} is linked`);
  // Made again (a resumed rollout), the entries are left as they are.
  assert.equal((await instances.prepareSnapshots(rolloutId, ids)).created, true);
  assert.equal(fs.readdirSync(layout.snapshotsOfRollout(rolloutId)).length, ids.length);
  // pk-b is written after its link was made; pk-c's file is replaced (as a restore does) and then
  // written, so its link names a file that is no longer the instance's.
  const write = async (id: string, s: string) => assert.equal((await restarted.gql(`mutation { update_items(instance_id: "${id}", where: {id: {_eq: 1}}, _set: {s: "${s}"}) { affected_rows } }`)).errors, undefined);
  await write('pk-b', 'written after linking');
  const { live } = layout.of('pk-c');
  fs.copyFileSync(live, `${live}.new`);
  fs.renameSync(`${live}.new`, live);
  await write('pk-c', 'written after its file was replaced');
  const moved = await Promise.all(ids.map((id) => instances.migrate(id, 2, { snapshotOf: rolloutId, ahead })));
  for (const id of ids) assert.ok(!sameFile(layout.of(id).snapshot(rolloutId), layout.of(id).live), `${id}: the snapshot is the old file`);
  assert.deepEqual(filesUnder(layout.root).filter((name) => !name.endsWith('.db')), [], 'no scrap is left beside the instance files');
  // All roll back to the state they had when they migrated.
  for (const [i, id] of ids.entries()) await instances.restoreSnapshot(id, rolloutId, { version: 1, changeCounter: moved[i]!.changeCounter, force: false });
  await restarted.close();
  const last = await startServer(t, { migrationsDir: dir, dataDir: server.dataDir });
  const read = await last.gql(`{ ${ids.map((id, i) => `i${i}: instance(id: "${id}") { schema_version items { s } }`).join(' ')} }`);
  assert.deepEqual(Object.values(read.data!), [
    { schema_version: 1, items: [{ s: 'before' }] },
    { schema_version: 1, items: [{ s: 'written after linking' }] },
    { schema_version: 1, items: [{ s: 'written after its file was replaced' }] },
  ]);
  // A link made ahead for an instance the rollout never migrated names the live file: no snapshot.
  await last.fleetql.instances().prepareSnapshots(rolloutId + 1, ['pk-a']);
  await assert.rejects(last.fleetql.instances().restoreSnapshot('pk-a', rolloutId + 1, { version: 0, changeCounter: null, force: true }), (error: any) => error.code === 'SNAPSHOT_MISSING');
});

test('without snapshots a file up to 1 MiB is migrated as a copy that replaces it, a larger one in place; both end at the new version with their rows', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  await createFleet(first, ['sz-small', 'sz-large'], () => `{id: 1, n: 1, s: "x"}`);
  await first.close();
  const layout = layoutOf(first.dataDir);
  // Past the bound: 1,500 rows of 1 KB, written straight into the file while no server runs.
  const large = new Database(layout.of('sz-large').live);
  large.exec("INSERT INTO items (id, n, s) WITH RECURSIVE k(v) AS (SELECT 2 UNION ALL SELECT v + 1 FROM k WHERE v < 1501) SELECT v, v, hex(randomblob(500)) FROM k;");
  large.close();
  assert.ok(fs.statSync(layout.of('sz-large').live).size > 1 << 20);
  const inode = (id: string) => fs.statSync(layout.of(id).live).ino;
  const before = { small: inode('sz-small'), large: inode('sz-large') };
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\nCREATE INDEX items_note ON items (note);\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const id = (await server.gql(`mutation { start_rollout(target_version: 2, strategy: {snapshots: false}) { id } }`)).data!['start_rollout'].id as string;
  assert.equal((await waitWhileRunning(server, id)).state, 'COMPLETED');
  assert.notEqual(inode('sz-small'), before.small, 'the small file was replaced by its migrated copy');
  assert.equal(inode('sz-large'), before.large, 'the large file was migrated in place');
  const read = await server.gql(`{ s: instance(id: "sz-small") { schema_version items_aggregate { aggregate { count } } } l: instance(id: "sz-large") { schema_version items_aggregate { aggregate { count } } items(where: {id: {_eq: 1}}) { note } } }`);
  assert.deepEqual(read.data, {
    s: { schema_version: 2, items_aggregate: { aggregate: { count: 1 } } },
    l: { schema_version: 2, items_aggregate: { aggregate: { count: 1501 } }, items: [{ note: 'v2' }] },
  });
  assert.deepEqual(filesUnder(layout.root).filter((name) => !name.endsWith('.db')), []);
});

test('destroying or retiring an instance removes a migrated copy a crash left beside its file', async (t) => {
  const server = await startServer(t, { migrationsDir: migrations(t).dir });
  await createFleet(server, ['sc-a', 'sc-b'], () => `{id: 1, n: 1, s: "x"}`);
  const layout = layoutOf(server.dataDir);
  for (const id of ['sc-a', 'sc-b']) fs.copyFileSync(layout.of(id).live, `${layout.of(id).live}.migrating`);
  assert.equal((await server.gql(`mutation { destroy_instance(id: "sc-a", archive: false) { id } }`)).errors, undefined);
  const retired = await server.gql(`mutation { archive_instance(id: "sc-b", retire: true) { id } }`);
  assert.equal(retired.errors, undefined, JSON.stringify(retired.errors));
  assert.deepEqual(filesUnder(layout.root), []);
});

test('a hot journal a killed writer left beside a file is rolled back before the file is copied and migrated', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  await createFleet(first, ['hj-a'], () => `{id: 1, n: 1, s: "committed"}`);
  await first.close();
  const { live } = layoutOf(first.dataDir).of('hj-a');
  // A writer killed in the middle of a transaction too large for its page cache: its changes are
  // partly in the file already, and the journal beside it holds what undoes them.
  const writer = `import Database from 'libsql';
const db = new Database(${JSON.stringify(live)});
db.exec("PRAGMA cache_size = 2; BEGIN; UPDATE items SET s = 'uncommitted'; INSERT INTO items (id, n, s) WITH RECURSIVE k(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM k WHERE v < 400) SELECT 1 + v, v, hex(randomblob(3000)) FROM k;");
process.kill(process.pid, 'SIGKILL');`;
  const killed = spawnSync(process.execPath, ['--input-type=module', '-e', writer], { cwd: repoRoot });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr.toString());
  assert.ok((fs.statSync(`${live}-journal`, { throwIfNoEntry: false })?.size ?? 0) > 0, 'a hot journal is left');
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const id = (await server.gql(`mutation { start_rollout(target_version: 2) { id } }`)).data!['start_rollout'].id as string;
  assert.equal((await waitWhileRunning(server, id)).state, 'COMPLETED');
  const read = await server.gql(`{ instance(id: "hj-a") { schema_version items { id s note } } }`);
  assert.deepEqual(read.data, { instance: { schema_version: 2, items: [{ id: 1, s: 'committed', note: 'v2' }] } });
  const rollback = await server.gql(`mutation { rollback_rollout(id: "${id}") { id } }`);
  assert.equal((await waitWhileRunning(server, rollback.data!['rollback_rollout'].id)).state, 'COMPLETED');
  const back = await server.gql(`{ instance(id: "hj-a") { schema_version items { id s } } }`);
  assert.deepEqual(back.data, { instance: { schema_version: 1, items: [{ id: 1, s: 'committed' }] } });
});

test('WAL instances: each snapshot is copied as its instance migrates (no pack), and a rollback with force restores them', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir, journalMode: 'wal' });
  const ids = ['wal-a', 'wal-b', 'wal-c'];
  await createFleet(first, ids, (_id, i) => `{id: 1, n: ${i}, s: "before"}`);
  await first.close();
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\nUPDATE items SET s = 'after';\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir, journalMode: 'wal' });
  const id = (await server.gql(`mutation { start_rollout(target_version: 2) { id } }`)).data!['start_rollout'].id as string;
  const forward = await waitWhileRunning(server, id);
  assert.equal(forward.state, 'COMPLETED', JSON.stringify(forward));
  const snapshots = path.join(server.dataDir, 'snapshots', `rollout-${id}`);
  assert.deepEqual(fs.readdirSync(snapshots).sort(), ids.map((instanceId) => `${instanceId}.db`));
  for (const name of fs.readdirSync(snapshots)) assert.ok(fs.statSync(path.join(snapshots, name)).size > 0, `${name} holds the file as it was`);
  // In WAL mode writes since the migration cannot be told apart: a rollback needs force.
  const rollback = await server.gql(`mutation { rollback_rollout(id: "${id}", force: true) { id } }`);
  assert.equal((await waitWhileRunning(server, rollback.data!['rollback_rollout'].id)).state, 'COMPLETED');
  const after = await server.gql(`{ ${ids.map((instanceId, i) => `i${i}: instance(id: "${instanceId}") { schema_version items { s } }`).join(' ')} }`);
  assert.deepEqual(Object.values(after.data!), ids.map(() => ({ schema_version: 1, items: [{ s: 'before' }] })));
});
