import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import S3rver from 's3rver';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { repoRoot, startServer, tempDir, type InProcessServer } from '../helpers/servers.js';

/** Every row of every table of an instance, in key order: what a round trip must keep exactly. */
async function everything(server: InProcessServer, id: string): Promise<unknown> {
  const result = await server.gql(`{ instance(id: "${id}") {
    schema_version labels
    machines(order_by: [{id: asc}], limit: 1000) { id name state region cpu_kind cpus memory_mb image created_at updated_at }
    machine_events(order_by: [{id: asc}], limit: 1000) { id machine_id type status at }
  } }`);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  return result.data!['instance'];
}

async function seeded(server: InProcessServer, id: string, labels = '{org: "acme", plan: "pro"}'): Promise<void> {
  const machines = Array.from({ length: 25 }, (_, i) => `{id: "m${i}", name: "n'${i}", state: "${i % 3 ? 'started' : 'failed'}", region: "fra", cpu_kind: "shared", cpus: ${1 + (i % 4)}, memory_mb: ${256 * (i + 1)}, image: "img:${i}", created_at: "2026-01-${String(1 + i).padStart(2, '0')}", updated_at: "2026-02-01"}`).join(', ');
  const events = Array.from({ length: 60 }, (_, i) => `{machine_id: "m${i % 25}", type: "t${i}", status: "ok", at: "2026-03-01T00:00:${String(i).padStart(2, '0')}Z"}`).join(', ');
  const result = await server.gql(`mutation { create_instance(id: "${id}", labels: ${labels}) { id } insert_machines(instance_id: "${id}", objects: [${machines}]) { affected_rows } insert_machine_events(instance_id: "${id}", objects: [${events}]) { affected_rows } }`);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
}

const archiveFields = 'id instance_id schema_version labels size_bytes compressed_bytes sha256 created_at verified_at';

test('archive and restore round-trip every row exactly, as the same id and as a clone', async (t) => {
  const server = await startServer(t);
  await seeded(server, 'shop');
  const before = await everything(server, 'shop');
  const archived = await server.gql(`mutation { archive_instance(id: "shop") { ${archiveFields} } }`);
  assert.equal(archived.errors, undefined, JSON.stringify(archived.errors));
  const archive = archived.data!['archive_instance'];
  assert.equal(archive.instance_id, 'shop');
  assert.equal(archive.schema_version, 2);
  assert.deepEqual(archive.labels, { org: 'acme', plan: 'pro' });
  assert.match(archive.sha256, /^[0-9a-f]{64}$/);
  assert.ok(archive.compressed_bytes < archive.size_bytes, 'compressed');
  assert.ok(archive.verified_at >= archive.created_at);
  // Writes go on after the snapshot; the archive keeps the state it was taken at.
  await server.gql(`mutation { update_machines(instance_id: "shop", where: {}, _set: {state: "stopped"}) { affected_rows } }`);

  const listed = await server.gql(`{ archives(instance_id: "shop") { id sha256 } all: archives { id } }`);
  assert.deepEqual(listed.data!['archives'], [{ id: archive.id, sha256: archive.sha256 }]);
  const files = fs.readdirSync(path.join(server.dataDir, 'archives', 'instances', 'shop')).sort();
  assert.deepEqual(files, [`${archive.id}.db.gz`, `${archive.id}.json`], 'data and manifest in the store');
  const manifest = JSON.parse(fs.readFileSync(path.join(server.dataDir, 'archives', 'instances', 'shop', `${archive.id}.json`), 'utf8'));
  assert.equal(manifest.sha256, archive.sha256);
  assert.equal(manifest.format, 'fleetql-archive/1');

  const clone = await server.gql(`mutation { restore_instance(archive_id: "${archive.id}", as_id: "shop-copy") { id state schema_version labels } }`);
  assert.deepEqual(clone.data!['restore_instance'], { id: 'shop-copy', state: 'ACTIVE', schema_version: 2, labels: { org: 'acme', plan: 'pro' } });
  assert.deepEqual(await everything(server, 'shop-copy'), before, 'the clone holds exactly the archived rows');

  const taken = await server.gql(`mutation { restore_instance(archive_id: "${archive.id}") { id } }`);
  assert.equal(taken.errors?.[0]?.extensions?.['code'], 'INSTANCE_EXISTS', 'the live instance is not overwritten');
  await server.gql(`mutation { destroy_instance(id: "shop", archive: false) { id } }`);
  const same = await server.gql(`mutation { restore_instance(archive_id: "${archive.id}") { id state } }`);
  assert.deepEqual(same.data!['restore_instance'], { id: 'shop', state: 'ACTIVE' });
  assert.deepEqual(await everything(server, 'shop'), before, 'restored under its own id, exactly');
});

test('a damaged archive answers ARCHIVE_CORRUPT and changes nothing', async (t) => {
  const server = await startServer(t);
  await seeded(server, 'victim');
  const archive = (await server.gql(`mutation { archive_instance(id: "victim") { id } }`)).data!['archive_instance'];
  const file = path.join(server.dataDir, 'archives', 'instances', 'victim', `${archive.id}.db.gz`);
  const good = fs.readFileSync(file);
  const restore = async () => (await server.gql(`mutation { restore_instance(archive_id: "${archive.id}", as_id: "clone") { id } }`)).errors?.[0]?.extensions?.['code'];

  const flipped = Buffer.from(good);
  flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
  fs.writeFileSync(file, flipped);
  assert.equal(await restore(), 'ARCHIVE_CORRUPT', 'a flipped byte');
  fs.writeFileSync(file, good.subarray(0, good.length - 10));
  assert.equal(await restore(), 'ARCHIVE_CORRUPT', 'truncated');
  fs.rmSync(file);
  assert.equal(await restore(), 'ARCHIVE_CORRUPT', 'missing');
  assert.equal((await server.gql(`mutation { restore_instance(archive_id: "a-none") { id } }`)).errors?.[0]?.extensions?.['code'], 'ARCHIVE_NOT_FOUND');

  const state = await server.gql(`{ instances(where: {state: {_in: [ACTIVE, CREATING, DESTROYED, ARCHIVED]}}) { id state } }`);
  assert.deepEqual(state.data!['instances'], [{ id: 'victim', state: 'ACTIVE' }], 'no clone was left behind');
  fs.writeFileSync(file, good);
  assert.equal(await restore(), undefined, 'the intact archive restores');
});

test('an unreachable store answers ARCHIVE_STORE_UNAVAILABLE and the instance stays ACTIVE', async (t) => {
  const server = await startServer(t, { archiveStore: 's3', s3Bucket: 'nowhere', s3Endpoint: 'http://127.0.0.1:9', s3AccessKeyId: 'x', s3SecretAccessKey: 'y', archiveTimeoutMs: 2000 });
  await seeded(server, 'steady');
  const result = await server.gql(`mutation { archive_instance(id: "steady") { id } }`);
  assert.equal(result.errors?.[0]?.extensions?.['code'], 'ARCHIVE_STORE_UNAVAILABLE');
  assert.ok(!result.errors![0]!.message.includes('secret'));
  const after = await server.gql(`{ instance(id: "steady") { state } archives { id } }`);
  assert.deepEqual(after.data, { instance: { state: 'ACTIVE' }, archives: [] });
});

test('the S3 store, against a real S3-protocol server on loopback', async (t) => {
  const directory = tempDir(t);
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const { port } = (await s3rver.run()) as { port: number };
  t.after(() => s3rver.close());
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  await client.send(new CreateBucketCommand({ Bucket: 'fleet-archives' }));
  client.destroy();

  const server = await startServer(t, { archiveStore: 's3', s3Bucket: 'fleet-archives', s3Prefix: 'prod/', s3Endpoint: endpoint, s3AccessKeyId: 'S3RVER', s3SecretAccessKey: 'S3RVER' });
  await seeded(server, 'cloud');
  const before = await everything(server, 'cloud');
  const archive = (await server.gql(`mutation { archive_instance(id: "cloud") { id sha256 } }`)).data!['archive_instance'];
  assert.ok(fs.existsSync(path.join(directory, 'fleet-archives')), 'objects landed in the S3 server');
  await server.gql(`mutation { destroy_instance(id: "cloud", archive: false) { id } }`);
  const restored = await server.gql(`mutation { restore_instance(archive_id: "${archive.id}") { id state } }`);
  assert.deepEqual(restored.data!['restore_instance'], { id: 'cloud', state: 'ACTIVE' });
  assert.deepEqual(await everything(server, 'cloud'), before);
});

test('retire and destroy with an archive: the file goes only after the archive is verified, and comes back exactly', async (t) => {
  const server = await startServer(t);
  await seeded(server, 'old-shop');
  await seeded(server, 'gone-shop', '{org: "globex"}');
  const before = { old: await everything(server, 'old-shop'), gone: await everything(server, 'gone-shop') };

  const retired = await server.gql(`mutation { archive_instance(id: "old-shop", retire: true) { id instance_id } }`);
  assert.equal(retired.errors, undefined, JSON.stringify(retired.errors));
  const destroyed = await server.gql(`mutation { destroy_instance(id: "gone-shop") { id state size_bytes } }`);
  assert.deepEqual(destroyed.data!['destroy_instance'], { id: 'gone-shop', state: 'DESTROYED', size_bytes: 0 });
  const states = await server.gql(`{ old: instance(id: "old-shop") { state size_bytes } archives { instance_id } }`);
  assert.deepEqual(states.data!['old'], { state: 'ARCHIVED', size_bytes: 0 });
  assert.deepEqual(states.data!['archives'].map((a: any) => a.instance_id).sort(), ['gone-shop', 'old-shop']);
  assert.deepEqual(fs.readdirSync(path.join(server.dataDir, 'instances'), { recursive: true }).filter((f) => String(f).endsWith('.db')), [], 'both files are gone');
  const closed = await server.gql(`{ instance(id: "old-shop") { machines { id } } }`);
  assert.equal(closed.errors?.[0]?.extensions?.['code'], 'INSTANCE_UNAVAILABLE', 'an archived instance is not served');
  assert.equal((await server.gql(`mutation { archive_instance(id: "old-shop", retire: true) { id } }`)).errors?.[0]?.extensions?.['code'], 'INSTANCE_UNAVAILABLE');

  for (const [id, archiveId] of [['old-shop', retired.data!['archive_instance'].id], ['gone-shop', undefined]] as const) {
    const archive = archiveId ?? (await server.gql(`{ archives(instance_id: "${id}") { id } }`)).data!['archives'][0].id;
    const restored = await server.gql(`mutation { restore_instance(archive_id: "${archive}") { id state } }`);
    assert.deepEqual(restored.data!['restore_instance'], { id, state: 'ACTIVE' });
  }
  assert.deepEqual({ old: await everything(server, 'old-shop'), gone: await everything(server, 'gone-shop') }, before);
});

test('retiring into an unreachable store changes nothing: the instance stays ACTIVE with its file', async (t) => {
  const server = await startServer(t, { archiveStore: 's3', s3Bucket: 'nowhere', s3Endpoint: 'http://127.0.0.1:9', s3AccessKeyId: 'x', s3SecretAccessKey: 'y', archiveTimeoutMs: 2000 });
  await seeded(server, 'stay');
  const before = await everything(server, 'stay');
  for (const mutation of ['archive_instance(id: "stay", retire: true) { id }', 'destroy_instance(id: "stay") { id }']) {
    const result = await server.gql(`mutation { ${mutation} }`);
    assert.equal(result.errors?.[0]?.extensions?.['code'], 'ARCHIVE_STORE_UNAVAILABLE', mutation);
  }
  assert.deepEqual(await everything(server, 'stay'), before);
  assert.equal((await server.gql(`{ instance(id: "stay") { state } }`)).data!['instance'].state, 'ACTIVE');
});

test('an archive from an older schema version restores at that version, is served by the mixed-version rules, and a rollout moves it forward', async (t) => {
  const migrationsDir = tempDir(t);
  fs.copyFileSync(path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql'), path.join(migrationsDir, '0001_create_items.sql'));
  const first = await startServer(t, { migrationsDir });
  await first.gql(`mutation { create_instance(id: "vintage") { id } insert_items(instance_id: "vintage", objects: [{id: 1, s: "old"}]) { affected_rows } }`);
  const archive = (await first.gql(`mutation { archive_instance(id: "vintage") { id schema_version } }`)).data!['archive_instance'];
  assert.equal(archive.schema_version, 1);
  await first.close();
  fs.writeFileSync(path.join(migrationsDir, '0002_add_note.sql'), 'ALTER TABLE items ADD COLUMN note TEXT;\n');
  const server = await startServer(t, { migrationsDir, dataDir: first.dataDir });
  const restored = await server.gql(`mutation { restore_instance(archive_id: "${archive.id}", as_id: "vintage-clone") { schema_version } }`);
  assert.deepEqual(restored.data!['restore_instance'], { schema_version: 1 });
  const read = await server.gql(`{ instance(id: "vintage-clone") { items { id s note } } }`);
  assert.deepEqual(read.data!['instance'].items, [{ id: 1, s: 'old', note: null }]);
  const rollout = await server.gql(`mutation { start_rollout(target_version: 2, where: {id: {_eq: "vintage-clone"}}) { id } }`);
  await server.fleetql.rollouts().settled(Number(rollout.data!['start_rollout'].id));
  const moved = await server.gql(`{ instance(id: "vintage-clone") { schema_version migrations_applied { version } } }`);
  assert.deepEqual(moved.data!['instance'], { schema_version: 2, migrations_applied: [{ version: 1 }, { version: 2 }] });
});
