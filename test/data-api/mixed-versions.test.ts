import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertCode, createInstances, ok, readInstance, typeFields } from '../helpers/data-api.js';
import { demoMigrations, startServer, tempDir, type InProcessServer } from '../helpers/servers.js';

// The API is built from the head version; an instance behind head is still served. "old" is made at
// version 2 (the demo migrations), then migration 3 is added and the server restarted on the same
// data directory: "new" is created at 3, "old" stays at 2.

const migration3 = `-- Version 3: a nullable column on machines and a new child table.
ALTER TABLE machines ADD COLUMN owner TEXT;
CREATE TABLE machine_tags (
  id INTEGER PRIMARY KEY,
  machine_id TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
  tag TEXT NOT NULL
);
`;

const machine = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  name: `name-${id}`,
  state: 'started',
  region: 'fra',
  cpu_kind: 'shared',
  cpus: 2,
  memory_mb: 512,
  image: 'registry/app:1',
  created_at: '2024-01-01T00:00:00.000Z',
  updated_at: '2024-01-01T00:00:00.000Z',
  ...extra,
});

const insertMachines = `mutation($id: ID!, $objects: [machines_insert_input!]!) { insert_machines(instance_id: $id, objects: $objects) { affected_rows returning { id owner } } }`;

async function mixedFleet(t: { after(fn: () => unknown): void }): Promise<InProcessServer> {
  const dataDir = tempDir(t);
  const migrationsDir = tempDir(t);
  for (const file of fs.readdirSync(demoMigrations).filter((f) => f.endsWith('.sql'))) fs.copyFileSync(path.join(demoMigrations, file), path.join(migrationsDir, file));
  const before = await startServer(t, { dataDir, migrationsDir });
  await createInstances(before, 'old');
  ok(await before.gql(insertMachines.replace(' owner', ''), { id: 'old', objects: [machine('o1'), machine('o2', { region: 'iad' })] }));
  ok(await before.gql(`mutation { insert_machine_events(instance_id: "old", objects: [{machine_id: "o1", type: "start", status: "ok", at: "2024-01-01T00:00:00.000Z"}]) { affected_rows } }`));
  await before.close();

  fs.writeFileSync(path.join(migrationsDir, '0003_add_owner_and_tags.sql'), migration3);
  const server = await startServer(t, { dataDir, migrationsDir });
  await createInstances(server, 'new');
  const versions = ok(await server.gql(`{ old: instance(id: "old") { schema_version } new: instance(id: "new") { schema_version } }`));
  assert.deepEqual(versions, { old: { schema_version: 2 }, new: { schema_version: 3 } }, 'old stays behind head, new is at head');
  return server;
}

test('the schema is built from the head version', async (t) => {
  const server = await mixedFleet(t);
  const machines = await typeFields(server, 'machines');
  assert.equal(machines.get('owner'), 'String');
  assert.equal(machines.get('machine_tags'), '[machine_tags!]!');
  const instance = await typeFields(server, 'Instance');
  for (const field of ['machine_tags', 'machine_tags_by_pk', 'machine_tags_aggregate', 'machine_tags_groups', 'machine_tags_connection']) assert.ok(instance.has(field), `Instance.${field}`);
});

test('an instance behind head reads missing columns as null and missing tables as empty', async (t) => {
  const server = await mixedFleet(t);
  const read = await readInstance(
    server,
    'old',
    `machines(order_by: [{id: asc}]) { id owner region machine_tags { tag } machine_events { type machine { owner } } }
     o1: machines_by_pk(id: "o1") { owner }
     ownerless: machines(where: {owner: {_is_null: true}}, order_by: [{id: asc}]) { id }
     owned: machines(where: {owner: {_eq: "alice"}}) { id }
     byOwner: machines(order_by: [{owner: asc}, {id: desc}]) { id }
     machines_aggregate { aggregate { count owners: count(columns: [owner]) max { owner } min { owner } } }
     machines_groups(grouping_keys: [owner]) { group_key { owner } group_aggregate { count } }
     machine_tags { id tag }
     machine_tags_by_pk(id: 1) { id }
     machine_tags_aggregate { aggregate { count max { tag } } }
     machine_tags_groups(grouping_keys: [tag]) { group_key { tag } }
     machine_tags_connection(first: 5) { edges { cursor } pageInfo { hasNextPage endCursor } }
     tagged: machines(where: {machine_tags: {tag: {_eq: "x"}}}) { id }`,
  );
  assert.deepEqual(read.machines, [
    { id: 'o1', owner: null, region: 'fra', machine_tags: [], machine_events: [{ type: 'start', machine: { owner: null } }] },
    { id: 'o2', owner: null, region: 'iad', machine_tags: [], machine_events: [] },
  ]);
  assert.deepEqual(read.o1, { owner: null });
  assert.deepEqual(read.ownerless, [{ id: 'o1' }, { id: 'o2' }], 'a missing column filters as null');
  assert.deepEqual(read.owned, []);
  assert.deepEqual(read.byOwner, [{ id: 'o2' }, { id: 'o1' }]);
  assert.deepEqual(read.machines_aggregate.aggregate, { count: 2, owners: 0, max: { owner: null }, min: { owner: null } });
  assert.deepEqual(read.machines_groups, [{ group_key: { owner: null }, group_aggregate: { count: 2 } }]);
  assert.deepEqual(read.machine_tags, []);
  assert.equal(read.machine_tags_by_pk, null);
  assert.deepEqual(read.machine_tags_aggregate.aggregate, { count: 0, max: { tag: null } });
  assert.deepEqual(read.machine_tags_groups, []);
  assert.deepEqual(read.machine_tags_connection, { edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  assert.deepEqual(read.tagged, []);

  // Paging over a missing column still gives every row once.
  const page1 = await readInstance(server, 'old', `machines_connection(first: 1, order_by: [{owner: asc}]) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } }`);
  assert.equal(page1.machines_connection.pageInfo.hasNextPage, true);
  const page2 = await readInstance(server, 'old', `machines_connection(first: 1, after: $after, order_by: [{owner: asc}]) { edges { node { id } } pageInfo { hasNextPage } }`, { after: page1.machines_connection.pageInfo.endCursor }, '$after: String');
  assert.deepEqual(
    [page1.machines_connection.edges[0].node.id, page2.machines_connection.edges[0].node.id].sort(),
    ['o1', 'o2'],
  );
  assert.equal(page2.machines_connection.pageInfo.hasNextPage, false);
});

test('the instance at head has the new column and table', async (t) => {
  const server = await mixedFleet(t);
  ok(await server.gql(insertMachines, { id: 'new', objects: [machine('n1', { owner: 'alice' })] }));
  ok(await server.gql(`mutation { insert_machine_tags(instance_id: "new", objects: [{machine_id: "n1", tag: "blue"}, {machine_id: "n1", tag: "green"}]) { affected_rows } }`));
  const read = await readInstance(
    server,
    'new',
    `machines { id owner machine_tags(order_by: [{tag: asc}]) { tag machine { owner } } }
     machine_tags_aggregate { aggregate { count } }`,
  );
  assert.deepEqual(read.machines, [{ id: 'n1', owner: 'alice', machine_tags: [{ tag: 'blue', machine: { owner: 'alice' } }, { tag: 'green', machine: { owner: 'alice' } }] }]);
  assert.equal(read.machine_tags_aggregate.aggregate.count, 2);
});

test('a write that needs what an instance lacks answers SCHEMA_VERSION_BEHIND and writes nothing', async (t) => {
  const server = await mixedFleet(t);
  const snapshot = () => readInstance(server, 'old', `machines(order_by: [{id: asc}]) { id name state region owner } machine_events { id type }`);
  const before = await snapshot();

  assertCode(await server.gql(`mutation { insert_machine_tags(instance_id: "old", objects: [{machine_id: "o1", tag: "x"}]) { affected_rows } }`), 'SCHEMA_VERSION_BEHIND', 'insert into a table the instance lacks');
  assertCode(await server.gql(insertMachines, { id: 'old', objects: [machine('o3'), machine('o4', { owner: 'bob' })] }), 'SCHEMA_VERSION_BEHIND', 'insert setting a column the instance lacks');
  assertCode(await server.gql(`mutation { update_machines(instance_id: "old", where: {id: {_eq: "o1"}}, _set: {owner: "bob", name: "changed"}) { affected_rows } }`), 'SCHEMA_VERSION_BEHIND', 'update setting a missing column');
  assertCode(await server.gql(`mutation { update_machines_by_pk(instance_id: "old", pk_columns: {id: "o1"}, _set: {owner: "bob"}) { id } }`), 'SCHEMA_VERSION_BEHIND', 'update_by_pk setting a missing column');
  assertCode(await server.gql(`mutation { update_machine_tags(instance_id: "old", where: {}, _set: {tag: "y"}) { affected_rows } }`), 'SCHEMA_VERSION_BEHIND', 'update of a missing table');
  assertCode(await server.gql(`mutation { update_machine_tags_by_pk(instance_id: "old", pk_columns: {id: 1}, _set: {tag: "y"}) { id } }`), 'SCHEMA_VERSION_BEHIND', 'update_by_pk of a missing table');

  // Deleting from a table the instance lacks: either refused the same way, or nothing to delete.
  for (const query of [`mutation { r: delete_machine_tags(instance_id: "old", where: {}) { affected_rows } }`, `mutation { r: delete_machine_tags_by_pk(instance_id: "old", id: 1) { id } }`]) {
    const result = await server.gql(query);
    if (result.errors) assertCode(result, 'SCHEMA_VERSION_BEHIND', query);
    else assert.ok(result.data!['r'] === null || result.data!['r'].affected_rows === 0, query);
  }
  assert.deepEqual(await snapshot(), before, 'nothing was written');

  // What does not need version 3 still works on the old instance, and reads the missing column as null.
  const inserted = ok(await server.gql(insertMachines, { id: 'old', objects: [machine('o5')] }))['insert_machines'];
  assert.deepEqual(inserted, { affected_rows: 1, returning: [{ id: 'o5', owner: null }] });
  const updated = ok(await server.gql(`mutation { update_machines(instance_id: "old", where: {id: {_eq: "o5"}}, _set: {name: "renamed"}, _inc: {cpus: 1}) { affected_rows returning { name cpus owner } } }`))['update_machines'];
  assert.deepEqual(updated, { affected_rows: 1, returning: [{ name: 'renamed', cpus: 3, owner: null }] });
  const deleted = ok(await server.gql(`mutation { delete_machines_by_pk(instance_id: "old", id: "o5") { id owner } }`))['delete_machines_by_pk'];
  assert.deepEqual(deleted, { id: 'o5', owner: null });

  const versions = ok(await server.gql(`{ old: instance(id: "old") { schema_version } }`));
  assert.deepEqual(versions, { old: { schema_version: 2 } }, 'nothing migrated the old instance behind the scenes');
  // The instance at head takes the same writes.
  ok(await server.gql(insertMachines, { id: 'new', objects: [machine('n2', { owner: 'bob' })] }));
  ok(await server.gql(`mutation { insert_machine_tags(instance_id: "new", objects: [{machine_id: "n2", tag: "x"}]) { affected_rows } }`));
});
