import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'libsql';
import { externalCheckMs } from '../../src/catalog/libsql-catalog.js';
import { instanceFileOf, repoRoot, startServer, type InProcessServer } from '../helpers/servers.js';

const migrationsDir = path.join(repoRoot, 'test/fixtures/fleet-migrations');

/** `count` instances labelled by team, each holding `rows` items with n = 1..rows. */
async function fleetOf(server: InProcessServer, count: number, rows: number, team = (i: number) => (i % 2 === 0 ? 'red' : 'blue')): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `app-${String(i).padStart(4, '0')}`);
  const items = Array.from({ length: rows }, (_, i) => `{id: ${i + 1}, n: ${i + 1}, grp: "g${i % 3}"}`).join(', ');
  for (let i = 0; i < ids.length; i += 50) {
    const batch = ids.slice(i, i + 50);
    const mutation = batch.map((id, j) => `c${j}: create_instance(id: "${id}", labels: {team: "${team(i + j)}"}) { id } i${j}: insert_items(instance_id: "${id}", objects: [${items}]) { affected_rows }`).join('\n');
    const result = await server.gql(`mutation { ${mutation} }`);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
  }
  return ids;
}

const aggregateQuery = (args = '') => `{ fleet${args} { instances_matched items_aggregate { aggregate { count sum { n } } coverage { targeted answered failed } } } }`;

test('pruning: instances the filter does not select are never opened', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const ids = await fleetOf(server, 10, 4);
  // Damage every blue instance: opening any of them would fail loudly.
  for (const [i, id] of ids.entries()) if (i % 2 === 1) fs.writeFileSync(instanceFileOf(server.dataDir, id), 'not a database '.repeat(100));
  const before = server.fleetql.instances().cacheStats();
  const red = await server.gql(aggregateQuery('(where: {labels: {_contains: {team: "red"}}})'));
  assert.equal(red.errors, undefined, JSON.stringify(red.errors));
  assert.deepEqual(red.data!['fleet'], { instances_matched: 5, items_aggregate: { aggregate: { count: 20, sum: { n: 50 } }, coverage: { targeted: 5, answered: 5, failed: 0 } } });
  const after = server.fleetql.instances().cacheStats();
  assert.ok(after.misses - before.misses <= 5, `opened ${after.misses - before.misses} files for 5 selected instances`);

  // A warm repeat opens no file at all.
  const warm = server.fleetql.instances().cacheStats();
  assert.equal((await server.gql(aggregateQuery('(where: {labels: {_contains: {team: "red"}}})'))).errors, undefined);
  assert.equal(server.fleetql.instances().cacheStats().misses, warm.misses, 'a warm repeat opens no new files');
});

test('damaged, truncated and missing files: the others answer, each failure is one error with code and instance_id', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const ids = await fleetOf(server, 8, 5);
  await server.close(); // handles closed: the damage below is what the next open sees
  const restarted = await startServer(t, { migrationsDir, dataDir: server.dataDir });
  const [garbage, truncated, missing] = [ids[1]!, ids[4]!, ids[6]!];
  fs.writeFileSync(instanceFileOf(server.dataDir, garbage), Buffer.alloc(8192, 0xab));
  fs.truncateSync(instanceFileOf(server.dataDir, truncated), 100);
  fs.rmSync(instanceFileOf(server.dataDir, missing));

  const result = await restarted.gql(`{ fleet {
    instances_matched
    items(order_by: [{n: desc}], limit: 3) { _instance_id n }
    items_aggregate { aggregate { count sum { n } } coverage { targeted answered failed } }
    items_groups(grouping_keys: [grp]) { group_key { grp } group_aggregate { count } coverage { answered failed } }
    items_connection(first: 2) { edges { node { _instance_id id } } coverage { targeted answered failed } }
    counts: items_aggregate { aggregate { values: count(columns: [n]) distinct: count(columns: [grp], distinct: true) } }
  } }`);
  const fleet = result.data!['fleet'];
  assert.equal(fleet.instances_matched, 8);
  assert.deepEqual(fleet.items_aggregate, { aggregate: { count: 25, sum: { n: 75 } }, coverage: { targeted: 8, answered: 5, failed: 3 } });
  assert.deepEqual(fleet.items.map((row: any) => row._instance_id), [ids[0], ids[2], ids[3]], 'the answering instances, in instance order on ties');
  assert.deepEqual(fleet.items_groups.map((g: any) => [g.group_key.grp, g.group_aggregate.count, g.coverage.failed]), [
    ['g0', 10, 3],
    ['g1', 10, 3],
    ['g2', 5, 3],
  ]);
  assert.deepEqual(fleet.items_connection.coverage, { targeted: 8, answered: 5, failed: 3 });
  assert.deepEqual(fleet.counts.aggregate, { values: 25, distinct: 3 });

  const errors = result.errors ?? [];
  // A count of columns is a fan-out of its own: its failures are reported on its own path.
  for (const field of ['items', 'items_aggregate', 'items_groups', 'items_connection', 'counts.aggregate.values', 'counts.aggregate.distinct']) {
    const mine = errors.filter((e) => e.path?.join('.') === `fleet.${field}`);
    assert.deepEqual(mine.map((e) => e.extensions?.['instance_id']).sort(), [garbage, truncated, missing].sort(), `one error per failed instance on ${field}`);
    for (const error of mine) {
      assert.equal(error.extensions?.['code'], 'INSTANCE_UNAVAILABLE');
      assert.ok(!error.message.includes(server.dataDir), 'no file path leaks');
    }
  }

  const strict = await restarted.gql(`{ fleet(partial: false) { items_aggregate { aggregate { count } } } }`);
  assert.equal(strict.data, null, 'with partial: false a failure fails the field (and the non-null parent)');
  assert.deepEqual((strict.errors ?? []).map((e) => e.extensions?.['instance_id']).sort(), [garbage, truncated, missing].sort());

  // Every healthy instance still reads correctly one by one.
  for (const id of ids.filter((id) => ![garbage, truncated, missing].includes(id))) {
    const one = await restarted.gql(`{ instance(id: "${id}") { items_aggregate { aggregate { count sum { n } } } } }`);
    assert.deepEqual(one.data!['instance'].items_aggregate.aggregate, { count: 5, sum: { n: 15 } });
  }
});

test('quarantined instances are reported, not read', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const ids = await fleetOf(server, 3, 2);
  // No API quarantines yet (rollouts will); mark one in the catalog the way a failed migration will.
  const { SqliteDatabase } = await import('../../src/storage/index.js');
  const catalog = SqliteDatabase.open(path.join(server.dataDir, 'catalog.db'), { journalMode: 'wal', busyTimeoutMs: 5000 });
  catalog.run(`UPDATE instances SET state = 'QUARANTINED' WHERE id = ?`, [ids[1]]);
  catalog.close();
  // Another connection's change reaches the server's instance lookups within externalCheckMs.
  await sleep(externalCheckMs);
  const result = await server.gql(aggregateQuery());
  assert.deepEqual(result.data!['fleet'].items_aggregate.coverage, { targeted: 3, answered: 2, failed: 1 });
  assert.equal(result.errors?.[0]?.extensions?.['code'], 'INSTANCE_QUARANTINED');
  assert.equal(result.errors?.[0]?.extensions?.['instance_id'], ids[1]);
});

test('cost is checked before any file is opened; concurrency and timeout are bounded', async (t) => {
  const server = await startServer(t, { migrationsDir, fleetMaxCost: 10 });
  await fleetOf(server, 6, 1);
  const before = server.fleetql.instances().cacheStats();
  const costly = await server.gql(`{ fleet { items { id } items_aggregate { aggregate { count } } } }`);
  assert.equal(costly.errors?.[0]?.extensions?.['code'], 'QUERY_TOO_COSTLY', '6 instances × 2 fields > 10');
  assert.equal(server.fleetql.instances().cacheStats().misses, before.misses);
  const narrowed = await server.gql(`{ fleet(where: {labels: {_contains: {team: "red"}}}) { items { id } items_aggregate { aggregate { count } } } }`);
  assert.equal(narrowed.errors, undefined, '3 × 2 fits');
  for (const args of ['concurrency: 0', 'concurrency: 100000', 'timeout_ms: 0', 'timeout_ms: -5']) {
    const bad = await server.gql(`{ fleet(${args}) { instances_matched } }`);
    assert.equal(bad.errors?.[0]?.extensions?.['code'], 'INVALID_ARGUMENT', args);
  }
});

test('a long fan-out does not stall single-instance requests', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const ids = await fleetOf(server, 300, 30);
  await server.close();
  const cold = await startServer(t, { migrationsDir, dataDir: server.dataDir });
  let fleetDone = false;
  const fleet = cold.gql(`{ fleet { items_aggregate { aggregate { count } } items(order_by: [{n: desc}], limit: 5) { n } } }`).then((result) => {
    fleetDone = true;
    return result;
  });
  // Single-instance reads sent while the fan-out runs are answered before it ends.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const single = await cold.gql(`{ instance(id: "${ids[0]}") { items_aggregate { aggregate { count } } } }`);
  const answeredDuringFanOut = !fleetDone;
  const result = await fleet;
  assert.equal(result.errors, undefined);
  assert.equal(result.data!['fleet'].items_aggregate.aggregate.count, 300 * 30);
  assert.equal(single.data!['instance'].items_aggregate.aggregate.count, 30);
  assert.ok(answeredDuringFanOut, 'the single-instance read was answered while the fan-out was still running');
});

test('the deadline: instances not reached in time are reported INSTANCE_TIMEOUT, the rest still answer', async (t) => {
  const server = await startServer(t, { migrationsDir });
  await fleetOf(server, 60, 20);
  await server.close();
  const hurried = await startServer(t, { migrationsDir, dataDir: server.dataDir, fleetDeadlineMs: 1 });
  const result = await hurried.gql(aggregateQuery());
  const { coverage, aggregate } = result.data!['fleet'].items_aggregate;
  assert.equal(coverage.targeted, 60);
  assert.ok(coverage.failed > 0, 'a cold fan-out over 60 instances cannot finish in 1 ms');
  assert.equal(coverage.answered + coverage.failed, 60);
  assert.equal(aggregate.count, coverage.answered * 20, 'the answer holds exactly the instances that answered');
  const codes = new Set((result.errors ?? []).map((e) => e.extensions?.['code']));
  assert.deepEqual([...codes], ['INSTANCE_TIMEOUT']);
  assert.equal(result.errors?.length, coverage.failed);
});

test('fleet sums stay exact past 2^63, inside one instance and across instances, aggregates and groups alike', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const big = 2n ** 62n;
  const insert = (id: string, rows: Array<[number, bigint, string]>) =>
    server.gql(`mutation { create_instance(id: "${id}") { id } insert_items(instance_id: "${id}", objects: [${rows.map(([key, n, grp]) => `{id: ${key}, n: "${n}", grp: "${grp}"}`).join(', ')}]) { affected_rows } }`);
  // "a": three values of 2^62, a sum SQLite's sum() cannot hold; "b": small values.
  for (const result of [await insert('a', [[1, big, 'x'], [2, big, 'x'], [3, big, 'y']]), await insert('b', [[1, 7n, 'x'], [2, 8n, 'y']])]) assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  // "c": a REAL stored in the INTEGER column (the table is not STRICT): the sum truncates it, as inside one instance.
  assert.equal((await server.gql(`mutation { create_instance(id: "c") { id } }`)).errors, undefined);
  const direct = new Database(instanceFileOf(server.dataDir, 'c'));
  direct.exec(`INSERT INTO items (id, n, grp) VALUES (1, 2.5, 'x'), (2, 4, 'x')`);
  direct.close();

  const query = `{ fleet {
    items_aggregate { aggregate { count sum { n } avg { n } } }
    items_groups(grouping_keys: [grp], order_by: [{grp: asc}]) { group_key { grp } group_aggregate { count sum { n } } }
  } }`;
  const result = await server.gql(query);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  const fleet = result.data!['fleet'];
  const singles = await Promise.all(['a', 'b', 'c'].map(async (id) => (await server.gql(`{ instance(id: "${id}") { items_aggregate { aggregate { sum { n } } } } }`)).data!['instance'].items_aggregate.aggregate.sum.n as string | number));
  // The BigInt scalar answers a safe integer as a number and a larger one as a string.
  assert.deepEqual(singles, [String(3n * big), 15, 6], 'inside one instance: exact, the REAL truncated');
  const total = 3n * big + 15n + 6n;
  assert.equal(fleet.items_aggregate.aggregate.sum.n, String(total));
  assert.equal(fleet.items_aggregate.aggregate.count, 7);
  assert.ok(Math.abs(fleet.items_aggregate.aggregate.avg.n - Number(total) / 7) < 1e6, 'avg is the merged sum over the merged count');
  assert.deepEqual(fleet.items_groups, [
    { group_key: { grp: 'x' }, group_aggregate: { count: 5, sum: { n: String(2n * big + 7n + 6n) } } },
    { group_key: { grp: 'y' }, group_aggregate: { count: 2, sum: { n: String(big + 8n) } } },
  ]);
});

test('a fleet count of distinct values leaves out an instance that timed out, and reports it', async (t) => {
  const server = await startServer(t, { migrationsDir });
  await fleetOf(server, 3, 5);
  assert.equal((await server.gql(`mutation { create_instance(id: "slow") { id } }`)).errors, undefined);
  // 20,000 distinct values: reading them takes well over the 1 ms allowed below.
  const direct = new Database(instanceFileOf(server.dataDir, 'slow'));
  direct.exec(`WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 20000) INSERT INTO items (id, n) SELECT i, 1000 + i FROM k`);
  direct.close();
  const query = (args: string) => `{ fleet${args} { items_aggregate { aggregate { distinct: count(columns: [n], distinct: true) } } } }`;
  const warm = await server.gql(query(''));
  assert.equal(warm.errors, undefined, JSON.stringify(warm.errors));
  assert.equal(warm.data!['fleet'].items_aggregate.aggregate.distinct, 20005);

  const hurried = await server.gql(query('(timeout_ms: 1)'));
  const failed = (hurried.errors ?? []).filter((e) => e.path?.join('.') === 'fleet.items_aggregate.aggregate.distinct');
  assert.ok(failed.some((e) => e.extensions?.['instance_id'] === 'slow' && e.extensions?.['code'] === 'INSTANCE_TIMEOUT'), JSON.stringify(hurried.errors));
  // The small instances share n = 1..5; any that answered in time gives those five, the slow one none.
  const smallAnswered = 3 - failed.filter((e) => e.extensions?.['instance_id'] !== 'slow').length;
  assert.equal(hurried.data!['fleet'].items_aggregate.aggregate.distinct, smallAnswered > 0 ? 5 : 0);
});
