import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli, spawnServer, tempDir } from '../helpers/servers.js';

test('fleetql rollout start --watch follows the rollout to the end with a progress bar', async (t) => {
  const migrationsDir = tempDir(t);
  const dataDir = tempDir(t);
  fs.copyFileSync(path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql'), path.join(migrationsDir, '0001_create_items.sql'));
  const args = ['--no-demo', '--data', dataDir, '--migrations', migrationsDir];
  const first = await spawnServer(t, { args });
  const mutation = Array.from({ length: 60 }, (_, i) => `c${i}: create_instance(id: "cli-${i}", labels: {org: "${i % 3 === 0 ? 'acme' : 'globex'}"}) { id }`).join('\n');
  assert.equal((await first.gql(`mutation { ${mutation} }`)).errors, undefined);
  first.child.kill('SIGTERM');
  await first.exited;
  fs.writeFileSync(path.join(migrationsDir, '0002_add_note.sql'), 'ALTER TABLE items ADD COLUMN note TEXT;\n');
  const server = await spawnServer(t, { args });

  const usage = await runCli(['rollout', 'start', '--url', server.url]);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /USAGE: fleetql rollout start needs --target/);

  const started = await runCli(['rollout', 'start', '--url', server.url, '--target', '2', '--where', '{"labels": {"_contains": {"org": "acme"}}}', '--batch-size', '5', '--watch']);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /rollout 1 → version 2: COMPLETED/);
  assert.match(started.stdout, /20\/20 done, 0 failed/);
  assert.match(started.stderr, /rollout 1 \[[█░]+\] \d+\/20 done · 0 failed · [\d.]+\/s · ETA/, 'a progress bar was drawn');

  const status = await runCli(['rollout', 'status', '1'], { env: { FLEETQL_URL: server.url } });
  assert.equal(status.code, 0);
  assert.match(status.stdout, /COMPLETED/);
  const missing = await runCli(['rollout', 'status', '42', '--url', server.url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ROLLOUT_NOT_FOUND/);
  const unreachable = await runCli(['rollout', 'status', '1', '--url', 'http://127.0.0.1:9/graphql']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /UNREACHABLE/);
});
