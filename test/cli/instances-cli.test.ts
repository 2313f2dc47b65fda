import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli, spawnServer, tempDir } from '../helpers/servers.js';

test('fleetql instances lists, shows, creates, relabels and destroys instances of a running server', async (t) => {
  const server = await spawnServer(t, { args: ['--no-demo', '--data', tempDir(t)] });
  const url = ['--url', server.url];

  const created = await runCli(['instances', 'create', 'shop-1', '--labels', '{"org": "acme", "plan": "pro"}', ...url]);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /^ID\s+STATE\s+VERSION\s+SIZE\s+LABELS\nshop-1\s+ACTIVE\s+2\s+\d+\s+org=acme,plan=pro\n$/);
  assert.equal((await runCli(['instances', 'create', 'shop-2', ...url])).code, 0);

  const listed = await runCli(['instances', 'list', '--where', '{"labels": {"_contains": {"org": "acme"}}}', '--json', ...url]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as Array<{ id: string; labels: unknown }>).map((i) => [i.id, i.labels]),
    [['shop-1', { org: 'acme', plan: 'pro' }]],
  );
  const all = await runCli(['instances', 'list', ...url]);
  assert.deepEqual(all.stdout.trim().split('\n').slice(1).map((line) => line.split(/\s+/)[0]), ['shop-1', 'shop-2']);

  const relabelled = await runCli(['instances', 'labels', 'shop-2', '{"org": "globex"}', ...url]);
  assert.equal(relabelled.code, 0, relabelled.stderr);
  assert.match(relabelled.stdout, /shop-2\s+ACTIVE\s+2\s+\d+\s+org=globex/);

  const shown = await runCli(['instances', 'show', 'shop-1', ...url]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.deepEqual((JSON.parse(shown.stdout) as { migrations_applied: Array<{ version: number }> }).migrations_applied.map((m) => m.version), [1, 2]);

  const destroyed = await runCli(['instances', 'destroy', 'shop-1', ...url]);
  assert.equal(destroyed.code, 0, destroyed.stderr);
  assert.equal(destroyed.stdout, 'destroyed shop-1 (archived first)\n');
  const archives = await server.gql(`{ archives(instance_id: "shop-1") { id } instance(id: "shop-2") { state } }`);
  assert.equal(archives.data!['archives'].length, 1);
  assert.equal((await runCli(['instances', 'destroy', 'shop-2', '--no-archive', ...url])).stdout, 'destroyed shop-2\n');

  // Mistakes answer a code and a message, exit 1, and change nothing.
  const missing = await runCli(['instances', 'show', 'nope', ...url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /INSTANCE_NOT_FOUND/);
  const badId = await runCli(['instances', 'create', '../etc', ...url]);
  assert.equal(badId.code, 1);
  assert.match(badId.stderr, /INVALID_INSTANCE_ID/);
  const badJson = await runCli(['instances', 'list', '--where', '{nope', ...url]);
  assert.equal(badJson.code, 1);
  assert.match(badJson.stderr, /USAGE: --where takes JSON/);
  const help = await runCli(['instances', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /fleetql instances list/);
  const after = await server.gql(`{ instances(where: {state: {_eq: ACTIVE}}) { id } }`);
  assert.deepEqual(after.data!['instances'], []);
});
