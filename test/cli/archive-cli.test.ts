import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli, spawnServer, tempDir } from '../helpers/servers.js';

test('fleetql archive --retire and fleetql restore work on many instances by filter, with a progress bar', async (t) => {
  const server = await spawnServer(t, { args: ['--no-demo', '--data', tempDir(t)] });
  const mutation = Array.from({ length: 12 }, (_, i) => `c${i}: create_instance(id: "app-${i}", labels: {org: "${i % 3 === 0 ? 'acme' : 'globex'}"}) { id }`).join('\n');
  assert.equal((await server.gql(`mutation { ${mutation} }`)).errors, undefined);
  const url = ['--url', server.url];

  const usage = await runCli(['archive', ...url]);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /USAGE: --where/);

  const retired = await runCli(['archive', ...url, '--where', '{"labels": {"_contains": {"org": "acme"}}}', '--retire']);
  assert.equal(retired.code, 0, retired.stderr);
  assert.match(retired.stdout, /retired 4 of 4 instance\(s\)/);
  assert.match(retired.stderr, /retire \[[█░]+\] \d+\/4/);
  const states = await server.gql(`{ archived: instances_aggregate(where: {state: {_eq: ARCHIVED}}) { aggregate { count } } active: instances_aggregate(where: {state: {_eq: ACTIVE}}) { aggregate { count } } }`);
  assert.deepEqual(states.data, { archived: { aggregate: { count: 4 } }, active: { aggregate: { count: 8 } } });

  const restored = await runCli(['restore', ...url, '--where', '{"labels": {"_contains": {"org": "acme"}}}']);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /restored 4 of 4 instance\(s\)/);
  const after = await server.gql(`{ instances_aggregate(where: {state: {_eq: ACTIVE}}) { aggregate { count } } }`);
  assert.equal(after.data!['instances_aggregate'].aggregate.count, 12);

  const one = await server.gql(`{ archives(instance_id: "app-0", limit: 1) { id } }`);
  const clone = await runCli(['restore', ...url, '--archive', one.data!['archives'][0].id, '--as', 'app-0-clone']);
  assert.equal(clone.code, 0, clone.stderr);
  assert.match(clone.stdout, /restored app-0-clone \(ACTIVE, schema version 2\)/);
  const bad = await runCli(['restore', ...url, '--archive', 'a-none']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /ARCHIVE_NOT_FOUND/);
});
