import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, startServer, type InProcessServer } from '../helpers/servers.js';

const migrationsDir = path.join(repoRoot, 'test/fixtures/fleet-migrations');

/** Instances `${prefix}-0…` labelled `team`, instance i holding items n = i * 10 + 1 … i * 10 + 3. */
async function instancesOf(server: InProcessServer, prefix: string, count: number, team: string): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  const mutation = ids
    .map((id, i) => `c${i}: create_instance(id: "${id}", labels: {team: "${team}"}) { id } i${i}: insert_items(instance_id: "${id}", objects: [${[1, 2, 3].map((k) => `{id: ${k}, n: ${i * 10 + k}, grp: "g${k}"}`).join(', ')}]) { affected_rows }`)
    .join('\n');
  const result = await server.gql(`mutation { ${mutation} }`);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
  return ids;
}

const question = (team: string) => `{ fleet(where: {labels: {_contains: {team: "${team}"}}}) {
  items_aggregate(where: {n: {_gt: 0}}) { aggregate { count sum { n } distinct: count(columns: [grp], distinct: true) } coverage { targeted answered failed } }
  items_groups(grouping_keys: [grp]) { group_key { grp } group_aggregate { count sum { n } } }
} }`;

async function ask(server: InProcessServer, team: string) {
  const result = await server.gql(question(team));
  assert.equal(result.errors, undefined, JSON.stringify(result.errors?.slice(0, 2)));
  return result.data!['fleet'];
}

/** What `count` instances made by instancesOf hold. */
function expected(count: number) {
  let sum = 0;
  for (let i = 0; i < count; i++) sum += 3 * i * 10 + 6;
  const group = (k: number) => {
    let n = 0;
    for (let i = 0; i < count; i++) n += i * 10 + k;
    return { group_key: { grp: `g${k}` }, group_aggregate: { count, sum: { n } } };
  };
  return {
    items_aggregate: { aggregate: { count: 3 * count, sum: { n: sum }, distinct: 3 }, coverage: { targeted: count, answered: count, failed: 0 } },
    items_groups: [group(1), group(2), group(3)],
  };
}

test('a question asked again runs the reads its last asking prepared, and answers the same', async (t) => {
  const server = await startServer(t, { migrationsDir });
  await instancesOf(server, 'red', 12, 'red');
  const instances = server.fleetql.instances();
  // The first asking binds its parameters, the second inlines them (a new statement text: see
  // RecentQuestions), the third finds the second's reads prepared.
  for (let asking = 0; asking < 2; asking++) assert.deepEqual(await ask(server, 'red'), expected(12));
  const before = instances.preparedReadStats();
  assert.ok(before.questions >= 3, `kept ${before.questions} questions (aggregate, distinct count, groups)`);
  const misses = instances.cacheStats().misses;
  assert.deepEqual(await ask(server, 'red'), expected(12));
  const after = instances.preparedReadStats();
  assert.equal(after.hits - before.hits, 3 * 12, 'each of the three fan-outs ran every instance\'s read as prepared');
  assert.equal(instances.cacheStats().misses, misses, 'and opened nothing');

  // Another selection is another question: relabelled, an instance leaves the red fleet.
  const relabel = await server.gql('mutation { set_instance_labels(id: "red-011", labels: {team: "blue"}) { id } }');
  assert.equal(relabel.errors, undefined, JSON.stringify(relabel.errors));
  assert.deepEqual(await ask(server, 'red'), expected(11));
});

test('prepared reads are dropped when a handle closes, so they never keep its descriptor', async (t) => {
  // 24 descriptors: the 16 red handles, then single reads of 30 others evict them.
  const server = await startServer(t, { migrationsDir, maxOpenDescriptors: 24 });
  await instancesOf(server, 'red', 16, 'red');
  const others = await instancesOf(server, 'blue', 30, 'blue');
  const instances = server.fleetql.instances();
  for (let asking = 0; asking < 3; asking++) assert.deepEqual(await ask(server, 'red'), expected(16));
  assert.ok(instances.preparedReadStats().questions > 0);
  const instanceFiles = () =>
    fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(path.join(server.dataDir, 'instances'));
      } catch {
        return false;
      }
    }).length;
  for (const id of others) {
    const result = await server.gql(`{ instance(id: "${id}") { items(limit: 1) { id } } }`);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    // Kept reads holding closed handles' statements would keep their descriptors past the budget.
    assert.ok(instanceFiles() <= 24, `${instanceFiles()} instance files open after reading ${id}`);
  }
  assert.equal(instances.preparedReadStats().questions, 0, 'closing handles dropped every prepared question');
  assert.deepEqual(await ask(server, 'red'), expected(16), 'asked again, the question prepares its reads anew');
});
