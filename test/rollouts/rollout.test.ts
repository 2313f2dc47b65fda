import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, startServer, tempDir, type InProcessServer } from '../helpers/servers.js';
import { InstanceLayout } from '../../src/instances/instance-layout.js';
import type { InstanceId } from '../../src/instances/instance-id.js';
import { readPackIndex } from '../../src/storage/index.js';

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

test('snapshots made ahead: one pack per batch in the rollout\'s directory; a snapshot of its own wins, one kept where fleetql kept them before is still restored, none is refused', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = ['sn-a', 'sn-b', 'sn-c'];
  await createFleet(first, ids, (_id, i) => `{id: 1, n: ${i}, s: "before"}`);
  await first.close();
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\n");
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const started = await server.gql(`mutation { start_rollout(target_version: 2) { id } }`);
  const id = started.data!['start_rollout'].id as string;
  assert.equal((await waitWhileRunning(server, id)).state, 'COMPLETED');

  // The instances in packs (one per batch: the canary wave is one), nothing else: no file of their own.
  const snapshots = path.join(server.dataDir, 'snapshots', `rollout-${id}`);
  const packs = fs.readdirSync(snapshots).map((name) => path.join(snapshots, name));
  assert.ok(packs.every((pack) => pack.endsWith('.pack')) && packs.length <= ids.length, packs.join(', '));
  const index = new Map(packs.flatMap((pack) => [...readPackIndex(pack)!].map(([instanceId, entry]) => [instanceId, { pack, ...entry }] as const)));
  assert.deepEqual([...index.keys()].sort(), ids);
  const image = (instanceId: string) => {
    const { pack, offset, length } = index.get(instanceId)!;
    return fs.readFileSync(pack).subarray(offset, offset + length);
  };
  for (const instanceId of ids) assert.equal(image(instanceId).subarray(0, 16).toString('latin1'), 'SQLite format 3\u0000');
  // sn-a's image where fleetql kept snapshots before (spread like instance files); sn-b's as a
  // snapshot of its own (as a migration makes when the file changed after it was packed); the
  // pack gone, sn-c has none.
  const legacy = new InstanceLayout(path.join(server.dataDir, 'instances'), path.join(server.dataDir, 'snapshots')).legacySnapshotOf(Number(id), 'sn-a' as InstanceId);
  fs.mkdirSync(path.dirname(legacy), { recursive: true });
  fs.writeFileSync(legacy, image('sn-a'));
  fs.writeFileSync(path.join(snapshots, 'sn-b.db'), image('sn-b'));
  for (const pack of packs) fs.rmSync(pack);
  await server.close();
  const restarted = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });

  const rollback = await restarted.gql(`mutation { rollback_rollout(id: "${id}") { id } }`);
  const result = await waitWhileRunning(restarted, rollback.data!['rollback_rollout'].id);
  assert.deepEqual(result.failures.map((f: any) => [f.instance_id, f.code]), [['sn-c', 'SNAPSHOT_MISSING']]);
  const after = await restarted.gql(`{ a: instance(id: "sn-a") { schema_version items { s } } b: instance(id: "sn-b") { schema_version items { s } } c: instance(id: "sn-c") { schema_version items { s note } } }`);
  assert.deepEqual(after.data, { a: { schema_version: 1, items: [{ s: 'before' }] }, b: { schema_version: 1, items: [{ s: 'before' }] }, c: { schema_version: 2, items: [{ s: 'before', note: 'v2' }] } });
});

test('snapshots are packed a batch ahead, past the end of a wave too (the canary runs while the next wave is packed), but not past a canary the rollout pauses after', async (t) => {
  const { dir, add } = migrations(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = ['la-a', 'la-b', 'la-c', 'la-d', 'la-e', 'la-f'];
  // la-a, the canary, holds a duplicate that the coming unique index rejects.
  await createFleet(first, ids, (id) => `{id: 1, n: 1, s: "x"}, {id: 2, n: 2, s: "${id === 'la-a' ? 'x' : 'y'}"}`);
  await first.close();
  add('0002_unique_s.sql', 'CREATE UNIQUE INDEX items_unique_s ON items (s);\n');
  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir });
  const packed = (rolloutId: string) => {
    const snapshots = path.join(server.dataDir, 'snapshots', `rollout-${rolloutId}`);
    return fs.readdirSync(snapshots).flatMap((name) => (name.endsWith('.pack') ? [...readPackIndex(path.join(snapshots, name))!.keys()] : [])).sort();
  };
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
  await server.close(); // the migration threads finish the packs already asked for
  assert.deepEqual(packed(pausedId), ['la-a'], 'nothing past a canary the rollout pauses after');
  assert.deepEqual(packed(failingId), ids, 'the next wave was packed while the canary ran');
});

test('a packed snapshot is used only if the file still holds it when its migration begins; else the file is copied then', async (t) => {
  const { dir, add } = migrations(t);
  const server = await startServer(t, { migrationsDir: dir });
  const ids = ['pk-a', 'pk-b'];
  await createFleet(server, ids, (_id, i) => `{id: 1, n: ${i}, s: "before"}`);
  add('0002_note.sql', "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'v2';\n");
  await server.close();
  const restarted = await startServer(t, { migrationsDir: dir, dataDir: server.dataDir });
  const instances = restarted.fleetql.instances();
  const rolloutId = 9001;
  const ahead = await instances.prepareSnapshots(rolloutId, ids);
  assert.deepEqual([...ahead.packed.keys()].sort(), ids);
  // Packing again packs nothing twice: each instance has one image per rollout.
  const again = await instances.prepareSnapshots(rolloutId, ids);
  assert.equal(fs.readdirSync(path.join(restarted.dataDir, 'snapshots', `rollout-${rolloutId}`)).length, 1);
  assert.deepEqual(again.packed.get('pk-a'), ahead.packed.get('pk-a'));
  // pk-b is written after it was packed: its packed image is stale.
  assert.equal((await restarted.gql(`mutation { update_items(instance_id: "pk-b", where: {id: {_eq: 1}}, _set: {s: "written after packing"}) { affected_rows } }`)).errors, undefined);
  const moved = await Promise.all(ids.map((id) => instances.migrate(id, 2, { snapshotOf: rolloutId, ahead })));
  const own = fs.readdirSync(path.join(restarted.dataDir, 'snapshots', `rollout-${rolloutId}`)).filter((name) => name.endsWith('.db'));
  assert.deepEqual(own, ['pk-b.db'], 'only the instance written since it was packed was copied as it migrated');
  // Both roll back to the state they had when they migrated.
  for (const [i, id] of ids.entries()) await instances.restoreSnapshot(id, rolloutId, { version: 1, changeCounter: moved[i]!.changeCounter, force: false });
  await restarted.close();
  const last = await startServer(t, { migrationsDir: dir, dataDir: server.dataDir });
  const read = await last.gql(`{ a: instance(id: "pk-a") { items { s } } b: instance(id: "pk-b") { items { s } } }`);
  assert.deepEqual(read.data, { a: { items: [{ s: 'before' }] }, b: { items: [{ s: 'written after packing' }] } });
  // A packed image is restored only for the migration it preceded: a counter that does not follow it is refused.
  const repack = await last.fleetql.instances().prepareSnapshots(rolloutId + 1, ['pk-a']);
  assert.ok(repack.packed.has('pk-a'));
  await assert.rejects(last.fleetql.instances().restoreSnapshot('pk-a', rolloutId + 1, { version: 0, changeCounter: repack.packed.get('pk-a')!.entry.counter + 5, force: true }), (error: any) => error.code === 'SNAPSHOT_MISSING');
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
