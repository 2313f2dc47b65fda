import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { RetireCrashPoint } from '../../src/instances/crash-points.js';
import { filesUnder, spawnServer, tempDir, type SpawnedServer } from '../helpers/servers.js';

/** Where each crash leaves the instance after a restart: still ACTIVE with its file, or ARCHIVED with a verified archive. */
const cases: Record<RetireCrashPoint, 'active' | 'archived'> = {
  'retire:journaled': 'active',
  'retire:archived': 'active',
  'retire:marked': 'archived',
  'retire:file-removed': 'archived',
};

async function stop(server: SpawnedServer): Promise<void> {
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
}

const rowsQuery = `{ instance(id: "victim") { state items: machines(order_by: [{id: asc}]) { id name cpus } } }`;

const retirements = [
  { mutation: 'archive_instance(id: "victim", retire: true) { id }', finalState: 'ARCHIVED' },
  { mutation: 'destroy_instance(id: "victim") { id }', finalState: 'DESTROYED' },
] as const;

describe('retiring into an archive survives kill -9 at every step', { concurrency: 2 }, () => {
for (const { mutation, finalState } of retirements)
for (const [point, outcome] of Object.entries(cases) as Array<[RetireCrashPoint, 'active' | 'archived']>) {
  test(`${mutation.split('(')[0]}, kill -9 at ${point}: the instance is ${outcome === 'active' ? 'still ACTIVE with its file and data' : `${finalState} with a verified archive that restores exactly`}`, async (t) => {
    const dataDir = tempDir(t);
    const args = ['--no-demo', '--data', dataDir];
    const setup = await spawnServer(t, { args });
    const machines = Array.from({ length: 12 }, (_, i) => `{id: "m${i}", name: "n${i}", state: "started", region: "fra", cpu_kind: "shared", cpus: ${i + 1}, memory_mb: 256, image: "i", created_at: "c", updated_at: "u"}`).join(', ');
    assert.equal((await setup.gql(`mutation { create_instance(id: "victim") { id } insert_machines(instance_id: "victim", objects: [${machines}]) { affected_rows } }`)).errors, undefined);
    const before = (await setup.gql(rowsQuery)).data!['instance'];
    await stop(setup);

    const crashing = await spawnServer(t, { args, env: { FLEETQL_CRASH_AT: point } });
    await assert.rejects(crashing.gql(`mutation { ${mutation} }`), 'the request dies with the process');
    assert.equal((await crashing.exited).signal, 'SIGKILL');

    const after = await spawnServer(t, { args });
    const liveFiles = filesUnder(path.join(dataDir, 'instances')).filter((f) => f.endsWith('victim.db'));
    const archives = (await after.gql(`{ archives(instance_id: "victim") { id } }`)).data!['archives'] as Array<{ id: string }>;
    if (outcome === 'active') {
      assert.deepEqual((await after.gql(rowsQuery)).data!['instance'], before, 'ACTIVE with every row');
      assert.equal(liveFiles.length, 1, 'the file is still there');
    } else {
      const state = (await after.gql(`{ instance(id: "victim") { state } }`)).data!['instance'].state;
      assert.equal(state, finalState);
      assert.deepEqual(liveFiles, [], 'the file was removed, after the archive was verified');
      assert.equal(archives.length, 1, 'one verified archive');
      const restored = await after.gql(`mutation { restore_instance(archive_id: "${archives[0]!.id}") { state } }`);
      assert.deepEqual(restored.data!['restore_instance'], { state: 'ACTIVE' });
      assert.deepEqual((await after.gql(rowsQuery)).data!['instance'], before, 'restored exactly');
    }
    assert.deepEqual(
      fs.readdirSync(dataDir, { recursive: true }).filter((f) => /\.(partial|restoring|creating)$/.test(String(f))),
      [],
      'no half-written file is left',
    );
    await stop(after);
  });
}
});

const restorePoints = ['create:journaled', 'create:file-built', 'create:file-placed', 'create:committed'] as const;

describe('restoring survives kill -9 at every step', { concurrency: 2 }, () => {
for (const point of restorePoints)
test(`kill -9 at ${point} while restoring an archived instance: after a restart it is ${point === 'create:committed' ? 'ACTIVE' : 'ARCHIVED again, and restores'}`, async (t) => {
  const dataDir = tempDir(t);
  const args = ['--no-demo', '--data', dataDir];
  const setup = await spawnServer(t, { args });
  assert.equal((await setup.gql(`mutation { create_instance(id: "victim", labels: {org: "acme"}) { id } insert_machines(instance_id: "victim", objects: [{id: "m", name: "n", state: "started", region: "fra", cpu_kind: "shared", cpus: 2, memory_mb: 256, image: "i", created_at: "c", updated_at: "u"}]) { affected_rows } }`)).errors, undefined);
  const before = (await setup.gql(rowsQuery)).data!['instance'];
  const archive = (await setup.gql(`mutation { archive_instance(id: "victim", retire: true) { id } }`)).data!['archive_instance'].id as string;
  await stop(setup);

  const crashing = await spawnServer(t, { args, env: { FLEETQL_CRASH_AT: point } });
  await assert.rejects(crashing.gql(`mutation { restore_instance(archive_id: "${archive}") { id } }`));
  assert.equal((await crashing.exited).signal, 'SIGKILL');

  const after = await spawnServer(t, { args });
  if (point !== 'create:committed') {
    assert.deepEqual((await after.gql(`{ instance(id: "victim") { state labels } }`)).data!['instance'], { state: 'ARCHIVED', labels: { org: 'acme' } }, 'the archived tombstone is back');
    assert.deepEqual(filesUnder(path.join(dataDir, 'instances')), []);
    assert.deepEqual((await after.gql(`mutation { restore_instance(archive_id: "${archive}") { state } }`)).data!['restore_instance'], { state: 'ACTIVE' });
  }
  assert.deepEqual((await after.gql(rowsQuery)).data!['instance'], before);
  await stop(after);
});
});
