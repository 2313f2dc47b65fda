/**
 * The CLI with authentication on: `fleetql keys create` makes a key whose hashed entry a
 * production server accepts, and the operator commands send it (FLEETQL_API_KEY or --api-key),
 * the SSE progress stream of `rollout --watch` included.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { graphql, runCli, startServer } from '../helpers/servers.js';

test('fleetql keys create → a production server accepts the key; rollout --watch and archive send it', async (t) => {
  const made = await runCli(['keys', 'create', '--id', 'ops', '--role', 'admin']);
  assert.equal(made.code, 0, made.stderr);
  const [key, line] = made.stdout.trim().split('\n');
  assert.match(key!, /^fql_[A-Za-z0-9_-]{43}$/);
  const entry = JSON.parse(line!) as { id: string; hash: string; role: string };
  assert.deepEqual({ id: entry.id, role: entry.role }, { id: 'ops', role: 'admin' });
  assert.ok(!line!.includes(key!), 'the entry holds only the hash');

  const server = await startServer(t, { mode: 'production', apiKeys: [entry as never] });
  const created = await graphql(server.url, `mutation { a: create_instance(id: "cli-a") { id } b: create_instance(id: "cli-b") { id } }`, undefined, { authorization: `Bearer ${key}` });
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));

  const refused = await runCli(['rollout', 'status', '1', '--url', server.url]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /UNAUTHENTICATED/);

  const watched = await runCli(['rollout', 'start', '--url', server.url, '--target', '1', '--watch'], { env: { FLEETQL_API_KEY: key! } });
  assert.equal(watched.code, 0, watched.stderr);
  assert.match(watched.stdout, /rollout 1 → version 1: COMPLETED/);

  const archived = await runCli(['archive', '--url', server.url, '--api-key', key!, '--where', '{"id": {"_eq": "cli-a"}}']);
  assert.equal(archived.code, 0, archived.stderr);
  assert.match(archived.stdout, /archived 1 of 1 instance/);

  const listed = await runCli(['instances', 'list', '--url', server.url, '--json'], { env: { FLEETQL_API_KEY: key! } });
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok((JSON.parse(listed.stdout) as Array<{ id: string }>).some((i) => i.id === 'cli-a'));
  const anonymous = await runCli(['instances', 'list', '--url', server.url]);
  assert.equal(anonymous.code, 1);
  assert.match(anonymous.stderr, /UNAUTHENTICATED/);

});
