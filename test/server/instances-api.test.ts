import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { filesUnder, startServer } from '../helpers/servers.js';

const instanceFields = 'id labels state schema_version size_bytes created_at updated_at';

test('create, read, list, relabel and destroy an instance', async (t) => {
  const server = await startServer(t);
  const created = await server.gql(`mutation { create_instance(id: "acme-api", labels: {org: "acme", region: "fra"}) { ${instanceFields} migrations_applied { version name checksum } } }`);
  assert.equal(created.errors, undefined);
  const instance = created.data!['create_instance'];
  assert.equal(instance.id, 'acme-api');
  assert.deepEqual(instance.labels, { org: 'acme', region: 'fra' });
  assert.equal(instance.state, 'ACTIVE');
  assert.equal(instance.schema_version, 2, 'created at the head version');
  assert.ok(instance.size_bytes > 0);
  assert.ok(!Number.isNaN(Date.parse(instance.created_at)));
  assert.deepEqual(
    instance.migrations_applied.map((m: any) => [m.version, m.name]),
    [
      [1, 'create_machines'],
      [2, 'create_machine_events'],
    ],
  );
  assert.match(instance.migrations_applied[0].checksum, /^[0-9a-f]{64}$/);

  const read = await server.gql(`{ instance(id: "acme-api") { id state labels } }`);
  assert.deepEqual(read.data!['instance'], { id: 'acme-api', state: 'ACTIVE', labels: { org: 'acme', region: 'fra' } });

  const relabelled = await server.gql(`mutation { set_instance_labels(id: "acme-api", labels: {org: "acme", plan: "pro"}) { labels updated_at } }`);
  assert.deepEqual(relabelled.data!['set_instance_labels'].labels, { org: 'acme', plan: 'pro' });
  assert.ok(relabelled.data!['set_instance_labels'].updated_at >= instance.updated_at);
  const byOldLabel = await server.gql(`{ instances(where: {labels: {_contains: {region: "fra"}}}) { id } }`);
  assert.deepEqual(byOldLabel.data!['instances'], [], 'labels are replaced, not merged');

  const destroyed = await server.gql(`mutation { destroy_instance(id: "acme-api", archive: false) { id state size_bytes } }`);
  assert.deepEqual(destroyed.data!['destroy_instance'], { id: 'acme-api', state: 'DESTROYED', size_bytes: 0 });
  assert.deepEqual(filesUnder(`${server.dataDir}/instances`), [], 'the file is gone');
  const listed = await server.gql(`{ instances { id } }`);
  assert.deepEqual(listed.data!['instances'], []);
  const tombstones = await server.gql(`{ instances(where: {state: {_eq: DESTROYED}}) { id state } }`);
  assert.deepEqual(tombstones.data!['instances'], [{ id: 'acme-api', state: 'DESTROYED' }]);

  const again = await server.gql(`mutation { create_instance(id: "acme-api") { id state labels } }`);
  assert.deepEqual(again.data!['create_instance'], { id: 'acme-api', state: 'ACTIVE', labels: {} }, 'a destroyed id can be created anew');
});

test('instances filters, orders and pages from the catalog', async (t) => {
  const server = await startServer(t);
  const specs = [
    ['a1', { org: 'acme', region: 'fra' }],
    ['a2', { org: 'acme', region: 'iad' }],
    ['g1', { org: 'globex', region: 'fra' }],
    ['g2', { org: 'globex', region: 'iad', tier: 'gold' }],
    ['i1', { org: 'initech', region: 'fra' }],
  ] as const;
  for (const [id, labels] of specs) {
    const result = await server.gql(`mutation($id: ID!, $labels: JSON) { create_instance(id: $id, labels: $labels) { id } }`, { id, labels });
    assert.equal(result.errors, undefined);
  }
  const ids = async (args: string) => {
    const result = await server.gql(`{ instances${args} { id } }`);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return (result.data!['instances'] as Array<{ id: string }>).map((i) => i.id);
  };
  assert.deepEqual(await ids(''), ['a1', 'a2', 'g1', 'g2', 'i1']);
  assert.deepEqual(await ids('(where: {labels: {_contains: {org: "acme"}}})'), ['a1', 'a2']);
  assert.deepEqual(await ids('(where: {labels: {_contains: {org: "globex", region: "iad"}}})'), ['g2']);
  assert.deepEqual(await ids('(where: {labels: {_has_key: "tier"}})'), ['g2']);
  assert.deepEqual(await ids('(where: {_or: [{id: {_eq: "i1"}}, {labels: {_contains: {region: "iad"}}}]})'), ['a2', 'g2', 'i1']);
  assert.deepEqual(await ids('(where: {_not: {labels: {_contains: {region: "fra"}}}})'), ['a2', 'g2']);
  assert.deepEqual(await ids('(where: {id: {_like: "g%"}})'), ['g1', 'g2']);
  assert.deepEqual(await ids('(where: {id: {_in: ["a1", "i1", "zz"]}})'), ['a1', 'i1']);
  assert.deepEqual(await ids('(where: {schema_version: {_eq: 2}, state: {_eq: ACTIVE}})'), ['a1', 'a2', 'g1', 'g2', 'i1']);
  assert.deepEqual(await ids('(where: {created_at: {_gt: "2000-01-01T00:00:00Z"}}, order_by: [{id: desc}])'), ['i1', 'g2', 'g1', 'a2', 'a1']);
  assert.deepEqual(await ids('(order_by: [{id: desc}], limit: 2, offset: 1)'), ['g2', 'g1']);
  assert.deepEqual(await ids('(where: {_or: []})'), []);
  assert.deepEqual(await ids('(where: {_and: []})'), ['a1', 'a2', 'g1', 'g2', 'i1']);

  const tooMany = await server.gql(`{ instances(limit: 5000) { id } }`);
  assert.equal(tooMany.errors?.[0]?.extensions?.['code'], 'INVALID_ARGUMENT');
  const twoColumns = await server.gql(`{ instances(order_by: [{id: asc, state: asc}]) { id } }`);
  assert.equal(twoColumns.errors?.[0]?.extensions?.['code'], 'INVALID_ARGUMENT');
  const badContains = await server.gql(`{ instances(where: {labels: {_contains: {org: 1}}}) { id } }`);
  assert.equal(badContains.errors?.[0]?.extensions?.['code'], 'INVALID_ARGUMENT');
});

test('bad input gets a stable code and changes nothing', async (t) => {
  const server = await startServer(t);
  await server.gql(`mutation { create_instance(id: "keep", labels: {org: "acme"}) { id } }`);
  const before = filesUnder(`${server.dataDir}/instances`);

  const code = async (query: string, variables?: Record<string, unknown>) => {
    const result = await server.gql(query, variables);
    assert.equal(result.errors?.length, 1, JSON.stringify(result));
    const error = result.errors![0]!;
    assert.ok(!/\/tmp|SELECT|INSERT|at .*\.ts/.test(error.message), `no internals leak: ${error.message}`);
    return error.extensions?.['code'];
  };
  for (const id of ['../x', '', 'x'.repeat(200), 'UPPER', 'a\u0000b', '/etc/passwd', 'a/../../b']) {
    assert.equal(await code(`mutation($id: ID!) { create_instance(id: $id) { id } }`, { id }), 'INVALID_INSTANCE_ID', id);
    assert.equal(await code(`query($id: ID!) { instance(id: $id) { id } }`, { id }), 'INVALID_INSTANCE_ID', id);
    assert.equal(await code(`mutation($id: ID!) { destroy_instance(id: $id, archive: false) { id } }`, { id }), 'INVALID_INSTANCE_ID', id);
  }
  assert.equal(await code(`{ instance(id: "nope") { id } }`), 'INSTANCE_NOT_FOUND');
  assert.equal(await code(`mutation { set_instance_labels(id: "nope", labels: {}) { id } }`), 'INSTANCE_NOT_FOUND');
  assert.equal(await code(`mutation { destroy_instance(id: "nope", archive: false) { id } }`), 'INSTANCE_NOT_FOUND');
  assert.equal(await code(`mutation { create_instance(id: "keep") { id } }`), 'INSTANCE_EXISTS');
  for (const labels of ['acme', ['a'], { org: 1 }, { org: { deep: 'x' } }, { 'bad key': 'v' }, { org: 'x'.repeat(1000) }]) {
    assert.equal(await code(`mutation($l: JSON) { create_instance(id: "fresh", labels: $l) { id } }`, { l: labels }), 'INVALID_LABELS', JSON.stringify(labels));
    assert.equal(await code(`mutation($l: JSON!) { set_instance_labels(id: "keep", labels: $l) { id } }`, { l: labels }), 'INVALID_LABELS');
  }

  assert.deepEqual(filesUnder(`${server.dataDir}/instances`), before, 'no file was created or removed');
  const after = await server.gql(`{ instances(where: {state: {_in: [ACTIVE, DESTROYED, CREATING]}}) { id state labels } }`);
  assert.deepEqual(after.data!['instances'], [{ id: 'keep', state: 'ACTIVE', labels: { org: 'acme' } }]);
});

test('concurrent operations on one instance are serialized', async (t) => {
  const server = await startServer(t);
  const creates = await Promise.all(Array.from({ length: 8 }, () => server.gql(`mutation { create_instance(id: "race") { id } }`)));
  assert.equal(creates.filter((r) => r.errors === undefined).length, 1, 'exactly one create wins');
  assert.ok(creates.filter((r) => r.errors !== undefined).every((r) => r.errors![0]!.extensions?.['code'] === 'INSTANCE_EXISTS'));

  const mixed = await Promise.all([
    server.gql(`mutation { set_instance_labels(id: "race", labels: {step: "1"}) { id } }`),
    server.gql(`mutation { destroy_instance(id: "race", archive: false) { id } }`),
    server.gql(`mutation { set_instance_labels(id: "race", labels: {step: "2"}) { id } }`),
    server.gql(`mutation { destroy_instance(id: "race", archive: false) { id } }`),
  ]);
  const codes = mixed.map((r) => r.errors?.[0]?.extensions?.['code'] ?? 'ok');
  assert.deepEqual(codes, ['ok', 'ok', 'INSTANCE_NOT_FOUND', 'INSTANCE_NOT_FOUND'], 'each runs after the one before it');
  assert.deepEqual(filesUnder(`${server.dataDir}/instances`), []);
});

test('migrations lists the set with the instances at each version', async (t) => {
  const server = await startServer(t);
  await server.gql(`mutation { a: create_instance(id: "a") { id } b: create_instance(id: "b") { id } }`);
  const result = await server.gql(`{ migrations { version name checksum is_head instances } }`);
  assert.deepEqual(
    result.data!['migrations'].map((m: any) => [m.version, m.name, m.is_head, m.instances]),
    [
      [1, 'create_machines', false, 0],
      [2, 'create_machine_events', true, 2],
    ],
  );
});

test('a damaged file answers INSTANCE_UNAVAILABLE for that instance only, without internals', async (t) => {
  const server = await startServer(t);
  await server.gql(`mutation { create_instance(id: "victim") { id } }`);
  // Damage the file under fleetql: reading it must fail cleanly for this instance only.
  const [file] = filesUnder(`${server.dataDir}/instances`);
  fs.writeFileSync(`${server.dataDir}/instances/${file}`, 'this is not a database, it is garbage '.repeat(200));
  const result = await server.gql(`{ instance(id: "victim") { id migrations_applied { version } } }`);
  assert.equal(result.errors?.[0]?.extensions?.['code'], 'INSTANCE_UNAVAILABLE');
  assert.equal(result.errors?.[0]?.extensions?.['instance_id'], 'victim');
  assert.ok(!result.errors![0]!.message.includes(server.dataDir));
  const healthy = await server.gql(`mutation { create_instance(id: "healthy") { id migrations_applied { version } } }`);
  assert.equal(healthy.errors, undefined);
});
