import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { spawnServer, startServer, tempDir, type GraphQLResponse } from '../helpers/servers.js';

const openDescriptors = (pid: number | 'self' = 'self') => fs.readdirSync(`/proc/${pid}/fd`).length;

function aliased(ids: readonly string[], field: (id: string) => string): string {
  return ids.map((id, i) => `i${i}: ${field(id)}`).join('\n');
}

function assertNoErrors(result: GraphQLResponse, what: string): void {
  assert.equal(result.errors, undefined, `${what}: ${JSON.stringify(result.errors?.slice(0, 3))}`);
}

test('the handle cache stays within its descriptor budget and reuses warm handles', async (t) => {
  const budget = 32;
  const server = await startServer(t, { maxOpenDescriptors: budget });
  const ids = Array.from({ length: 150 }, (_, i) => `tenant-${i}`);
  for (let i = 0; i < ids.length; i += 50) {
    assertNoErrors(await server.gql(`mutation { ${aliased(ids.slice(i, i + 50), (id) => `create_instance(id: "${id}") { id }`)} }`), 'create');
  }
  const baseline = openDescriptors();
  let peak = 0;
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < ids.length; i += 25) {
      const result = await server.gql(`{ ${aliased(ids.slice(i, i + 25), (id) => `instance(id: "${id}") { migrations_applied { version } }`)} }`);
      assertNoErrors(result, 'read');
      assert.equal(Object.keys(result.data!).length, 25);
      peak = Math.max(peak, openDescriptors());
      const stats = server.fleetql.instances().cacheStats();
      assert.ok(stats.descriptors <= budget, `open handle descriptors ${stats.descriptors} within ${budget}`);
    }
  }
  const stats = server.fleetql.instances().cacheStats();
  assert.ok(stats.evictions > 0, 'more instances than the budget: handles were evicted');
  assert.ok(peak - baseline <= budget + 8, `process descriptors grew by ${peak - baseline}, budget ${budget}`);

  // A warm repeat over instances that fit the budget opens nothing new.
  const warm = ids.slice(0, 10);
  const read = () => server.gql(`{ ${aliased(warm, (id) => `instance(id: "${id}") { migrations_applied { version } }`)} }`);
  assertNoErrors(await read(), 'first warm read');
  const before = server.fleetql.instances().cacheStats();
  assertNoErrors(await read(), 'second warm read');
  const after = server.fleetql.instances().cacheStats();
  assert.equal(after.misses, before.misses, 'no file opened on a warm repeat');
  assert.equal(after.hits - before.hits, warm.length);
});

test('a server under ulimit -n 256 creates and reads 600 instances, more than it could hold open at once', async (t) => {
  const limit = 256;
  const dataDir = tempDir(t);
  const server = await spawnServer(t, {
    args: ['--no-demo', '--data', dataDir],
    env: { FLEETQL_MAX_OPEN_DESCRIPTORS: '128' },
    maxFiles: limit,
  });
  const pid = server.child.pid!;
  const ids = Array.from({ length: 600 }, (_, i) => `app-${i.toString().padStart(4, '0')}`);
  let peak = 0;
  for (let i = 0; i < ids.length; i += 50) {
    assertNoErrors(await server.gql(`mutation { ${aliased(ids.slice(i, i + 50), (id) => `create_instance(id: "${id}") { id }`)} }`), `create batch ${i}`);
    peak = Math.max(peak, openDescriptors(pid));
  }
  const createPeak = peak;
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < ids.length; i += 100) {
      const result = await server.gql(`{ ${aliased(ids.slice(i, i + 100), (id) => `instance(id: "${id}") { id migrations_applied { version } }`)} }`);
      assertNoErrors(result, `read batch ${i}`);
      for (const value of Object.values(result.data!)) assert.equal(value.migrations_applied.length, 2);
      peak = Math.max(peak, openDescriptors(pid));
    }
  }
  t.diagnostic(`peak open descriptors of the server: ${createPeak} while creating, ${peak} overall (ulimit ${limit}, handle budget 128)`);
  assert.ok(peak < limit, `peak ${peak} stays under the limit`);
  assert.ok(peak <= 128 + 64, `peak ${peak} stays near the handle budget`);
  const listed = await server.gql(`{ instances(limit: 1000) { id } }`);
  assert.equal(listed.data!['instances'].length, ids.length);
});
