import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, startServer, tempDir, type InProcessServer } from '../helpers/servers.js';

const baseMigration = path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql');
// Seconds of work inside the migration's transaction: a recursive count the worker has to grind through.
const slowMigration = `ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'migrated';
CREATE TABLE burn AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT sum(x) AS total FROM c;
DROP TABLE burn;
`;

function migrationsAtV1(t: Parameters<typeof tempDir>[0]): string {
  const dir = tempDir(t);
  fs.copyFileSync(baseMigration, path.join(dir, '0001_create_items.sql'));
  return dir;
}

async function ok(server: InProcessServer, query: string): Promise<Record<string, any>> {
  const result = await server.gql(query);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  return result.data!;
}

test('on a migration worker, a slow migration leaves the server answering, and a write to the migrating instance waits for it and lands', async (t) => {
  const dir = migrationsAtV1(t);
  const first = await startServer(t, { migrationsDir: dir });
  await ok(first, `mutation { a: create_instance(id: "slow") { id } b: create_instance(id: "other") { id }
    x: insert_items(instance_id: "slow", objects: [{id: 1, n: 1}]) { affected_rows } y: insert_items(instance_id: "other", objects: [{id: 1, n: 1}]) { affected_rows } }`);
  await first.close();
  fs.writeFileSync(path.join(dir, '0002_slow.sql'), slowMigration);

  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir, migrationThreads: 1 });
  const started = await ok(server, `mutation { start_rollout(target_version: 2, where: {id: {_eq: "slow"}}) { id } }`);
  const rolloutId = Number(started['start_rollout'].id);
  const rollouts = server.fleetql.rollouts();

  // Sent while the migration runs; it must wait for it (not fail, not slip in under it).
  const write = server.gql(`mutation { insert_items(instance_id: "slow", objects: [{id: 2, n: 2, s: "during"}]) { affected_rows } }`);
  // Reads of another instance are answered while the migration is still going: with the migration
  // on the request thread they could only be answered before it started or after it ended.
  let answeredDuring = 0;
  while (rollouts.view(rolloutId).state === 'RUNNING') {
    const read = await ok(server, `{ instance(id: "other") { items { id n } } }`);
    assert.deepEqual(read['instance'].items, [{ id: 1, n: 1 }]);
    if (rollouts.view(rolloutId).counts.done === 0) answeredDuring += 1;
  }
  const done = await rollouts.settled(rolloutId);
  assert.equal(done.state, 'COMPLETED', JSON.stringify(done.failures));
  assert.ok(answeredDuring >= 3, `reads answered during the migration: ${answeredDuring}`);
  t.diagnostic(`reads of another instance answered during the migration: ${answeredDuring}`);

  const written = await write;
  assert.equal(written.errors, undefined, JSON.stringify(written.errors));
  assert.equal(written.data!['insert_items'].affected_rows, 1);
  const after = await ok(server, `{ instance(id: "slow") { schema_version migrations_applied { version } items(order_by: [{id: asc}]) { id s note } } }`);
  assert.deepEqual(after['instance'], {
    schema_version: 2,
    migrations_applied: [{ version: 1 }, { version: 2 }],
    items: [
      { id: 1, s: null, note: 'migrated' },
      { id: 2, s: 'during', note: 'migrated' },
    ],
  });
});

test('with no migration workers (FLEETQL_MIGRATION_THREADS=0) rollouts, failures and rollbacks run on the main thread alike', async (t) => {
  const dir = migrationsAtV1(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = Array.from({ length: 12 }, (_, i) => `inst-${i}`);
  await ok(first, `mutation { ${ids.map((id, i) => `c${i}: create_instance(id: "${id}") { id } i${i}: insert_items(instance_id: "${id}", objects: [{id: 1, s: "a"}, {id: 2, s: "${i % 4 === 0 ? 'a' : 'b'}"}]) { affected_rows }`).join(' ')} }`);
  await first.close();
  fs.writeFileSync(path.join(dir, '0002_unique_s.sql'), 'CREATE UNIQUE INDEX items_unique_s ON items (s);\n');

  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir, migrationThreads: 0 });
  const rollouts = server.fleetql.rollouts();
  const started = await ok(server, `mutation { start_rollout(target_version: 2, strategy: {max_failures: 100}) { id } }`);
  const forward = await rollouts.settled(Number(started['start_rollout'].id));
  assert.equal(forward.state, 'FAILED');
  assert.deepEqual(forward.counts, { ...forward.counts, total: 12, done: 9, failed: 3 });
  assert.deepEqual(forward.failures.map((f) => f.instance_id).sort(), ['inst-0', 'inst-4', 'inst-8']);
  for (const failure of forward.failures) {
    assert.equal(failure.code, 'MIGRATION_FAILED');
    assert.match(failure.message, /UNIQUE constraint failed/);
  }

  const back = await ok(server, `mutation { rollback_rollout(id: "${forward.id}") { id } }`);
  const rolledBack = await rollouts.settled(Number(back['rollback_rollout'].id));
  assert.equal(rolledBack.state, 'COMPLETED', JSON.stringify(rolledBack.failures));
  const versions = await ok(server, `{ migrations { version instances } }`);
  assert.deepEqual(versions['migrations'], [{ version: 1, instances: 12 }, { version: 2, instances: 0 }]);
  const applied = await ok(server, `{ instance(id: "inst-1") { migrations_applied { version } } }`);
  assert.deepEqual(applied['instance'].migrations_applied, [{ version: 1 }]);
});

test('a slow instance holds only its own slot: the others keep migrating on the other thread, and their progress is recorded meanwhile', async (t) => {
  const dir = migrationsAtV1(t);
  const first = await startServer(t, { migrationsDir: dir });
  const quick = Array.from({ length: 29 }, (_, i) => `b-${String(i).padStart(3, '0')}`);
  // Sorted first, so the slow instance is taken in the first step with a quick one beside it.
  await ok(first, `mutation { s: create_instance(id: "a-slow") { id } si: insert_items(instance_id: "a-slow", objects: [{id: 1, n: 5000000}]) { affected_rows }
    ${quick.map((id, i) => `c${i}: create_instance(id: "${id}") { id } i${i}: insert_items(instance_id: "${id}", objects: [{id: 1, n: 1}]) { affected_rows }`).join('\n')} }`);
  await first.close();
  // Slow only where an item says so: the burn counts up to the instance's largest n.
  fs.writeFileSync(
    path.join(dir, '0002_slow_for_one.sql'),
    `ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'migrated';
CREATE TABLE burn AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT max(n) FROM items)) SELECT sum(x) AS total FROM c;
DROP TABLE burn;
`,
  );

  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir, migrationThreads: 2 });
  const started = await ok(server, `mutation { start_rollout(target_version: 2, strategy: {canary: 0, batch_size: 100, concurrency: 2}) { id } }`);
  const rolloutId = Number(started['start_rollout'].id);
  const rollouts = server.fleetql.rollouts();
  // The catalog moves an instance's version when its result is recorded.
  const instances = server.fleetql.instances();
  let recordedWhileSlow = 0;
  while (rollouts.view(rolloutId).state === 'RUNNING') {
    const { counts } = rollouts.view(rolloutId);
    if (instances.get('a-slow').schema_version === 1) recordedWhileSlow = Math.max(recordedWhileSlow, counts.done);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.diagnostic(`quick instances recorded while the slow one was migrating: ${recordedWhileSlow} of ${quick.length}`);
  const done = await rollouts.settled(rolloutId);
  assert.equal(done.state, 'COMPLETED', JSON.stringify(done.failures));
  assert.deepEqual(done.counts, { total: 30, done: 30, failed: 0, skipped: 0, remaining: 0 });
  assert.ok(recordedWhileSlow >= 10, `quick instances were migrated and recorded while the slow one was still migrating (${recordedWhileSlow})`);
  const slow = await ok(server, `{ instance(id: "a-slow") { schema_version items { note } } }`);
  assert.deepEqual(slow['instance'], { schema_version: 2, items: [{ note: 'migrated' }] });
});

test('a migration worker gives back the descriptor of every file it migrated, however long the rollout', async (t) => {
  const dir = migrationsAtV1(t);
  const first = await startServer(t, { migrationsDir: dir });
  const ids = Array.from({ length: 300 }, (_, i) => `d-${String(i).padStart(3, '0')}`);
  for (let i = 0; i < ids.length; i += 100) {
    await ok(first, `mutation { ${ids.slice(i, i + 100).map((id, j) => `c${j}: create_instance(id: "${id}") { id }`).join(' ')} }`);
  }
  await first.close();
  fs.writeFileSync(path.join(dir, '0002_note.sql'), `ALTER TABLE items ADD COLUMN note TEXT;\nCREATE INDEX items_note ON items (note);\n`);

  const server = await startServer(t, { migrationsDir: dir, dataDir: first.dataDir, migrationThreads: 1, maxOpenDescriptors: 32 });
  const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;
  const before = openDescriptors();
  const started = await ok(server, `mutation { start_rollout(target_version: 2, strategy: {snapshots: false}) { id } }`);
  const rolloutId = Number(started['start_rollout'].id);
  const rollouts = server.fleetql.rollouts();
  let peak = before;
  while (rollouts.view(rolloutId).state === 'RUNNING') {
    peak = Math.max(peak, openDescriptors());
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const done = await rollouts.settled(rolloutId);
  peak = Math.max(peak, openDescriptors());
  assert.equal(done.state, 'COMPLETED', JSON.stringify(done.failures));
  assert.equal(done.counts.done, ids.length);
  t.diagnostic(`process descriptors: ${before} before the rollout, peak ${peak} while it migrated ${ids.length} files on one worker`);
  // A worker parks between tasks in Atomics.wait, where its event loop never turns: without a
  // release inside its tasks, every closed connection kept its descriptor (one per file migrated).
  assert.ok(peak - before < 150, `descriptors grew by ${peak - before} over ${ids.length} migrated files`);
});
