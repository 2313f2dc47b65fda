import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertClose, assertCode, createInstances, enumValues, fieldArgs, ok, queryInstance, readInstance, statementCounter, typeFields } from '../helpers/data-api.js';
import { startServer, type InProcessServer } from '../helpers/servers.js';

// The per-instance data API generated from the demo migrations (machines, machine_events), checked
// against rows the test inserts itself through the API and values it computes from them.

interface Machine {
  id: string;
  name: string;
  state: string;
  region: string;
  cpu_kind: string;
  cpus: number;
  memory_mb: number;
  image: string;
  created_at: string;
  updated_at: string;
}

interface MachineEvent {
  id: number;
  machine_id: string;
  type: string;
  status: string;
  at: string;
}

const machineFields = 'id name state region cpu_kind cpus memory_mb image created_at updated_at';
const eventFields = 'id machine_id type status at';
const pad = (n: number) => String(n).padStart(2, '0');

const regions = ['fra', 'iad', 'syd'];
const states = ['started', 'stopped', 'failed', 'started'];
const eventTypes = ['start', 'exit', 'restart'];

function machine(i: number): Machine {
  const day = `2024-01-${pad(i)}T10:00:00.000Z`;
  return {
    id: `m${pad(i)}`,
    name: `web-${i}`,
    state: states[i % 4]!,
    region: regions[i % 3]!,
    cpu_kind: i % 2 === 0 ? 'performance' : 'shared',
    cpus: [1, 2, 4, 8][i % 4]!,
    memory_mb: 256 * (1 + (i % 5)),
    image: `registry/app:${i % 3}`,
    created_at: day,
    updated_at: day,
  };
}

/** Events of machine i: i % 4 of them (0 to 3), so some machines have none. */
function eventsOf(i: number): Array<Omit<MachineEvent, 'id'>> {
  return Array.from({ length: i % 4 }, (_, k) => ({
    machine_id: `m${pad(i)}`,
    type: eventTypes[(i + k) % 3]!,
    status: k % 2 === 0 ? 'ok' : 'error',
    at: `2024-02-${pad(i)}T0${k}:00:00.000Z`,
  }));
}

const insertMachines = `mutation($id: ID!, $objects: [machines_insert_input!]!) {
  insert_machines(instance_id: $id, objects: $objects) { affected_rows returning { ${machineFields} _instance_id } }
}`;
const insertEvents = `mutation($id: ID!, $objects: [machine_events_insert_input!]!) {
  insert_machine_events(instance_id: $id, objects: $objects) { affected_rows returning { ${eventFields} _instance_id } }
}`;

interface Seeded {
  server: InProcessServer;
  machines: Machine[];
  events: MachineEvent[];
}

/** A server with instance "alpha" holding machines m01…m10 and their events, and "beta" holding one other machine. */
async function seed(t: { after(fn: () => unknown): void }, count = 10): Promise<Seeded> {
  const server = await startServer(t);
  await createInstances(server, 'alpha', 'beta');
  const machines = Array.from({ length: count }, (_, i) => machine(i + 1));
  const inserted = ok(await server.gql(insertMachines, { id: 'alpha', objects: machines }), 'insert_machines')['insert_machines'];
  assert.equal(inserted.affected_rows, count);
  assert.deepEqual(
    [...inserted.returning].sort(byKeys<Machine>(['id', 'asc'])),
    machines.map((m) => ({ ...m, _instance_id: 'alpha' })),
    'returning gives the inserted rows',
  );
  const eventObjects = machines.flatMap((_, i) => eventsOf(i + 1));
  const insertedEvents = ok(await server.gql(insertEvents, { id: 'alpha', objects: eventObjects }), 'insert_machine_events')['insert_machine_events'];
  assert.equal(insertedEvents.affected_rows, eventObjects.length);
  const events = [...(insertedEvents.returning as Array<MachineEvent & { _instance_id: string }>)].sort((a, b) => a.id - b.id).map(({ _instance_id, ...event }) => {
    assert.equal(_instance_id, 'alpha');
    assert.equal(typeof event.id, 'number', 'an INTEGER PRIMARY KEY is assigned by SQLite and read as a BigInt (a number when safe)');
    return event;
  });
  assert.deepEqual(
    events.map(({ id: _id, ...rest }) => rest),
    eventObjects,
    'SQLite assigns ascending ids in insertion order',
  );
  assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'distinct ids');
  ok(await server.gql(insertMachines, { id: 'beta', objects: [{ ...machine(1), id: 'b01', name: 'beta-only' }] }), 'insert into beta');
  return { server, machines, events };
}

/** Field types without the non-null marks (nullability there is not what is being checked). */
const bare = (fields: Map<string, string>): Record<string, string> => Object.fromEntries([...fields].map(([name, type]) => [name, type.replaceAll('!', '')]));

const byKeys =
  <T>(...keys: Array<[keyof T, 'asc' | 'desc']>) =>
  (a: T, b: T): number => {
    for (const [key, direction] of keys) {
      const x = a[key];
      const y = b[key];
      if (x === y) continue;
      const cmp = (x as never) < (y as never) ? -1 : 1;
      return direction === 'asc' ? cmp : -cmp;
    }
    return 0;
  };

test('list: filters, order, limit and offset, with _instance_id and nothing from other instances', async (t) => {
  const { server, machines } = await seed(t);
  const ids = async (args: string) => {
    const instance = await readInstance(server, 'alpha', `machines${args} { id _instance_id }`);
    for (const row of instance.machines) assert.equal(row._instance_id, 'alpha');
    return (instance.machines as Array<{ id: string }>).map((m) => m.id);
  };
  const idsOf = (rows: Machine[]) => rows.map((m) => m.id);
  const sortedIds = (rows: Machine[]) => idsOf(rows).sort();

  const all = await readInstance(server, 'alpha', `machines { ${machineFields} _instance_id }`);
  assert.deepEqual(
    [...all.machines].sort(byKeys<Machine>(['id', 'asc'])),
    machines.map((m) => ({ ...m, _instance_id: 'alpha' })),
    'every column reads back exactly; cpus and memory_mb are JSON numbers',
  );
  assert.deepEqual((await ids('(where: {region: {_eq: "fra"}})')).sort(), sortedIds(machines.filter((m) => m.region === 'fra')));
  assert.deepEqual((await ids('(where: {region: {_neq: "fra"}})')).sort(), sortedIds(machines.filter((m) => m.region !== 'fra')));
  assert.deepEqual((await ids('(where: {cpus: {_gt: 2}})')).sort(), sortedIds(machines.filter((m) => m.cpus > 2)));
  assert.deepEqual((await ids('(where: {cpus: {_gte: "2", _lte: 4}})')).sort(), sortedIds(machines.filter((m) => m.cpus >= 2 && m.cpus <= 4)), 'BigInt takes a string of digits as well');
  assert.deepEqual((await ids('(where: {memory_mb: {_lt: 768}})')).sort(), sortedIds(machines.filter((m) => m.memory_mb < 768)));
  assert.deepEqual((await ids('(where: {id: {_in: ["m02", "m05", "zz"]}})')).sort(), ['m02', 'm05']);
  assert.deepEqual((await ids('(where: {state: {_nin: ["started", "failed"]}})')).sort(), sortedIds(machines.filter((m) => m.state === 'stopped')));
  assert.deepEqual((await ids('(where: {name: {_like: "web-1%"}})')).sort(), ['m01', 'm10']);
  assert.deepEqual((await ids('(where: {name: {_like: "WEB-1%"}})')).sort(), [], '_like is case-sensitive');
  assert.deepEqual((await ids('(where: {name: {_ilike: "WEB-_"}})')).sort(), sortedIds(machines.filter((m) => m.name.length === 5)), '_ilike ignores case, _ is one character');
  assert.deepEqual((await ids('(where: {name: {_nlike: "web-1%"}})')).sort(), sortedIds(machines.filter((m) => !m.name.startsWith('web-1'))));
  assert.deepEqual((await ids('(where: {name: {_nilike: "WEB-1%"}})')).sort(), sortedIds(machines.filter((m) => !m.name.startsWith('web-1'))));
  assert.deepEqual((await ids('(where: {image: {_is_null: false}})')).sort(), sortedIds(machines));
  assert.deepEqual((await ids('(where: {image: {_is_null: true}})')).sort(), []);
  assert.deepEqual(
    (await ids('(where: {_or: [{region: {_eq: "fra"}}, {_and: [{cpus: {_eq: 8}}, {_not: {state: {_eq: "failed"}}}]}]})')).sort(),
    sortedIds(machines.filter((m) => m.region === 'fra' || (m.cpus === 8 && m.state !== 'failed'))),
  );
  assert.deepEqual((await ids('(where: {region: {_eq: "iad"}, cpu_kind: {_eq: "shared"}})')).sort(), sortedIds(machines.filter((m) => m.region === 'iad' && m.cpu_kind === 'shared')), 'fields of one bool_exp are ANDed');
  assert.deepEqual(await ids('(where: {_or: []})'), []);
  assert.deepEqual((await ids('(where: {_and: []})')).sort(), sortedIds(machines));

  assert.deepEqual(await ids('(order_by: [{cpus: desc}, {id: asc}])'), idsOf([...machines].sort(byKeys<Machine>(['cpus', 'desc'], ['id', 'asc']))));
  assert.deepEqual(await ids('(order_by: [{region: asc}, {memory_mb: desc}, {id: desc}])'), idsOf([...machines].sort(byKeys<Machine>(['region', 'asc'], ['memory_mb', 'desc'], ['id', 'desc']))));
  assert.deepEqual(
    await ids('(order_by: [{region: asc}, {memory_mb: desc}, {id: asc}], limit: 4, offset: 2)'),
    idsOf([...machines].sort(byKeys<Machine>(['region', 'asc'], ['memory_mb', 'desc'], ['id', 'asc'])).slice(2, 6)),
  );
  assert.deepEqual(await ids('(order_by: [{id: desc}], limit: 3)'), ['m10', 'm09', 'm08']);
  assert.deepEqual(await ids('(order_by: [{id: asc}], offset: 8)'), ['m09', 'm10']);
  assert.deepEqual(await ids('(order_by: [{id: asc}], offset: 50)'), []);
  assert.deepEqual(await ids('(limit: 0)'), []);
  assert.deepEqual(await ids('(where: {cpus: {_eq: 8}}, order_by: [{id: desc}], limit: 1)'), [idsOf(machines.filter((m) => m.cpus === 8)).sort().reverse()[0]]);

  const beta = await readInstance(server, 'beta', 'machines { id name _instance_id }');
  assert.deepEqual(beta.machines, [{ id: 'b01', name: 'beta-only', _instance_id: 'beta' }], 'each instance sees only its own file');
});

test('the generated schema follows the conventions', async (t) => {
  const server = await startServer(t);
  const machinesType = await typeFields(server, 'machines');
  for (const [field, type] of [
    ['id', 'String!'],
    ['name', 'String!'],
    ['cpus', 'BigInt!'],
    ['memory_mb', 'BigInt!'],
    ['created_at', 'String!'],
    ['_instance_id', 'ID!'],
    ['machine_events', '[machine_events!]!'],
  ]) {
    assert.equal(machinesType.get(field!), type, `machines.${field}`);
  }
  const eventsType = await typeFields(server, 'machine_events');
  // Not pinned by the spec: an INTEGER PRIMARY KEY (never null in SQLite) declared without NOT NULL, and an object relationship over a NOT NULL key.
  assert.ok(['BigInt!', 'BigInt'].includes(eventsType.get('id')!), `machine_events.id: ${eventsType.get('id')}`);
  assert.ok(['machines!', 'machines'].includes(eventsType.get('machine')!), `machine_events.machine: ${eventsType.get('machine')}`);
  assert.equal(eventsType.get('_instance_id'), 'ID!');

  const instance = await typeFields(server, 'Instance');
  assert.equal(instance.get('machines'), '[machines!]!');
  assert.equal(instance.get('machines_by_pk'), 'machines');
  assert.equal(instance.get('machines_aggregate'), 'machines_aggregate!');
  assert.equal(instance.get('machines_groups'), '[machines_group!]!');
  assert.equal(instance.get('machines_connection'), 'machines_connection!');
  assert.equal(instance.get('machine_events_by_pk'), 'machine_events');
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Instance', 'machines')), {
    where: 'machines_bool_exp',
    order_by: '[machines_order_by!]',
    limit: 'Int',
    offset: 'Int',
  });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Instance', 'machines_by_pk')), { id: 'String!' });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Instance', 'machine_events_by_pk')), { id: 'BigInt!' });
  assert.equal((await fieldArgs(server, 'Instance', 'machines_groups')).get('grouping_keys'), '[machines_select_column!]!');
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Instance', 'machines_connection')), {
    first: 'Int',
    after: 'String',
    where: 'machines_bool_exp',
    order_by: '[machines_order_by!]',
  });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'machines', 'machine_events')), {
    where: 'machine_events_bool_exp',
    order_by: '[machine_events_order_by!]',
    limit: 'Int',
    offset: 'Int',
  });

  const aggregateFields = await typeFields(server, 'machines_aggregate_fields');
  assert.equal(aggregateFields.get('count'), 'Int!');
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'machines_aggregate_fields', 'count')), { columns: '[machines_select_column!]', distinct: 'Boolean' });
  assert.deepEqual(bare(await typeFields(server, 'machines_sum_fields')), { cpus: 'BigInt', memory_mb: 'BigInt' }, 'sum has the numeric columns');
  assert.deepEqual(bare(await typeFields(server, 'machines_avg_fields')), { cpus: 'Float', memory_mb: 'Float' });
  const min = bare(await typeFields(server, 'machines_min_fields'));
  assert.equal(min['cpus'], 'BigInt');
  assert.equal(min['name'], 'String');
  assert.equal(min['created_at'], 'String');
  assert.equal(bare(await typeFields(server, 'machines_max_fields'))['memory_mb'], 'BigInt');
  assert.deepEqual(Object.fromEntries(await typeFields(server, 'machines_inc_input')), { cpus: 'BigInt', memory_mb: 'BigInt' }, '_inc has only the numeric columns');
  assert.deepEqual((await enumValues(server, 'machines_select_column')).sort(), machineFields.split(' ').sort());
  assert.deepEqual((await enumValues(server, 'machines_constraint')).sort(), ['machines_pkey']);
  assert.deepEqual((await enumValues(server, 'order_by')).sort(), ['asc', 'asc_nulls_first', 'asc_nulls_last', 'desc', 'desc_nulls_first', 'desc_nulls_last']);
  const groupsOrderBy = await typeFields(server, 'machines_groups_order_by');
  assert.equal(groupsOrderBy.get('_count'), 'order_by');
  assert.equal(groupsOrderBy.get('region'), 'order_by');
  const groupKey = await typeFields(server, 'machines_group_key');
  assert.equal(groupKey.get('region'), 'String', 'group keys are nullable');
  assert.equal(groupKey.get('cpus'), 'BigInt');
  const stringComparison = await typeFields(server, 'String_comparison_exp');
  for (const op of ['_eq', '_neq', '_gt', '_gte', '_lt', '_lte', '_in', '_nin', '_is_null', '_like', '_nlike', '_ilike', '_nilike']) assert.ok(stringComparison.has(op), `String_comparison_exp.${op}`);
  const bigIntComparison = await typeFields(server, 'BigInt_comparison_exp');
  assert.equal(bigIntComparison.get('_eq'), 'BigInt');
  assert.ok(!bigIntComparison.has('_like'));
  const boolExp = await typeFields(server, 'machines_bool_exp');
  assert.equal(boolExp.get('machine_events'), 'machine_events_bool_exp', 'relationships filter with the target bool_exp');
  assert.equal(boolExp.get('cpus'), 'BigInt_comparison_exp');
  assert.equal(boolExp.get('_and')?.replaceAll('!', ''), '[machines_bool_exp]');
  assert.equal(boolExp.get('_not'), 'machines_bool_exp');

  const mutation = await typeFields(server, 'Mutation');
  assert.equal(mutation.get('insert_machines'), 'machines_mutation_response!');
  assert.equal(mutation.get('update_machines'), 'machines_mutation_response!');
  assert.equal(mutation.get('delete_machines'), 'machines_mutation_response!');
  assert.equal(mutation.get('update_machines_by_pk'), 'machines');
  assert.equal(mutation.get('delete_machines_by_pk'), 'machines');
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Mutation', 'insert_machines')), {
    instance_id: 'ID!',
    objects: '[machines_insert_input!]!',
    on_conflict: 'machines_on_conflict',
  });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Mutation', 'update_machines')), {
    instance_id: 'ID!',
    where: 'machines_bool_exp!',
    _set: 'machines_set_input',
    _inc: 'machines_inc_input',
  });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Mutation', 'update_machines_by_pk')), {
    instance_id: 'ID!',
    pk_columns: 'machines_pk_columns_input!',
    _set: 'machines_set_input',
    _inc: 'machines_inc_input',
  });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Mutation', 'delete_machines_by_pk')), { instance_id: 'ID!', id: 'String!' });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Mutation', 'delete_machine_events_by_pk')), { instance_id: 'ID!', id: 'BigInt!' });
  assert.deepEqual(Object.fromEntries(await typeFields(server, 'machines_mutation_response')), { affected_rows: 'Int!', returning: '[machines!]!' });
  const onConflict = await typeFields(server, 'machines_on_conflict');
  assert.equal(onConflict.get('constraint'), 'machines_constraint!');
  assert.equal(onConflict.get('update_columns'), '[machines_update_column!]!');
  assert.equal(onConflict.get('where'), 'machines_bool_exp');
  assert.deepEqual(Object.fromEntries(await typeFields(server, 'PageInfo')), { hasNextPage: 'Boolean!', endCursor: 'String' });
  assert.deepEqual(Object.fromEntries(await typeFields(server, 'machines_edge')), { cursor: 'String!', node: 'machines!' });
});

test('by_pk reads one row or null', async (t) => {
  const { server, machines, events } = await seed(t);
  const m3 = machines[2]!;
  const event = events[4]!;
  const read = await readInstance(
    server,
    'alpha',
    `m3: machines_by_pk(id: "m03") { ${machineFields} _instance_id }
     none: machines_by_pk(id: "nope") { id }
     otherInstance: machines_by_pk(id: "b01") { id }
     e: machine_events_by_pk(id: ${event.id}) { ${eventFields} }
     eAsString: machine_events_by_pk(id: "${event.id}") { id }
     eNone: machine_events_by_pk(id: 999999) { id }`,
  );
  assert.deepEqual(read.m3, { ...m3, _instance_id: 'alpha' });
  assert.equal(read.none, null);
  assert.equal(read.otherInstance, null, 'b01 lives in beta');
  assert.deepEqual(read.e, event);
  assert.deepEqual(read.eAsString, { id: event.id });
  assert.equal(read.eNone, null);
});

test('aggregate: count, count(columns, distinct), sum, avg, min, max, against values computed here', async (t) => {
  const { server, machines, events } = await seed(t);
  const aggregate = async (where: string, rows: Machine[]) => {
    const instance = await readInstance(
      server,
      'alpha',
      `machines_aggregate${where} { aggregate {
        count
        regions: count(columns: [region], distinct: true)
        regionValues: count(columns: [region])
        kinds: count(columns: [cpu_kind], distinct: true)
        distinctCpus: count(columns: [cpus], distinct: true)
        sum { cpus memory_mb }
        avg { cpus memory_mb }
        min { cpus memory_mb name created_at id }
        max { cpus memory_mb name created_at id }
      } }`,
    );
    const agg = instance.machines_aggregate.aggregate;
    const what = `machines_aggregate${where}`;
    assert.equal(agg.count, rows.length, `${what} count`);
    assert.equal(agg.regions, new Set(rows.map((m) => m.region)).size, `${what} distinct regions`);
    assert.equal(agg.regionValues, rows.length, `${what} count(columns: [region]) counts non-null values`);
    assert.equal(agg.kinds, new Set(rows.map((m) => m.cpu_kind)).size);
    assert.equal(agg.distinctCpus, new Set(rows.map((m) => m.cpus)).size);
    const sum = (key: 'cpus' | 'memory_mb') => rows.reduce((total, m) => total + m[key], 0);
    assert.deepEqual(agg.sum, { cpus: sum('cpus'), memory_mb: sum('memory_mb') }, `${what} sum (BigInt, a number when safe)`);
    assertClose(agg.avg.cpus, sum('cpus') / rows.length, `${what} avg cpus`);
    assertClose(agg.avg.memory_mb, sum('memory_mb') / rows.length, `${what} avg memory_mb`);
    const extreme = <K extends keyof Machine>(key: K, pick: 'min' | 'max'): Machine[K] => rows.map((m) => m[key]).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[pick === 'min' ? 0 : rows.length - 1]!;
    for (const pick of ['min', 'max'] as const) {
      assert.deepEqual(
        agg[pick],
        { cpus: extreme('cpus', pick), memory_mb: extreme('memory_mb', pick), name: extreme('name', pick), created_at: extreme('created_at', pick), id: extreme('id', pick) },
        `${what} ${pick}`,
      );
    }
  };
  await aggregate('', machines);
  await aggregate('(where: {region: {_eq: "fra"}})', machines.filter((m) => m.region === 'fra'));
  await aggregate('(where: {_or: [{cpus: {_gte: 4}}, {state: {_eq: "failed"}}]})', machines.filter((m) => m.cpus >= 4 || m.state === 'failed'));

  const empty = await readInstance(server, 'alpha', `machines_aggregate(where: {region: {_eq: "nowhere"}}) { aggregate { count regions: count(columns: [region], distinct: true) max { cpus name } } }`);
  assert.equal(empty.machines_aggregate.aggregate.count, 0);
  assert.equal(empty.machines_aggregate.aggregate.regions, 0);
  assert.deepEqual(empty.machines_aggregate.aggregate.max, { cpus: null, name: null }, 'min/max of no rows are null');

  const eventAggregate = await readInstance(
    server,
    'alpha',
    `all: machine_events_aggregate { aggregate { count max { at id } min { id } machines: count(columns: [machine_id], distinct: true) } }
     fra: machine_events_aggregate(where: {machine: {region: {_eq: "fra"}}}) { aggregate { count } }`,
  );
  assert.equal(eventAggregate.all.aggregate.count, events.length);
  assert.equal(eventAggregate.all.aggregate.machines, new Set(events.map((e) => e.machine_id)).size);
  assert.equal(eventAggregate.all.aggregate.max.at, events.map((e) => e.at).sort().at(-1));
  assert.equal(eventAggregate.all.aggregate.max.id, Math.max(...events.map((e) => e.id)));
  assert.equal(eventAggregate.all.aggregate.min.id, Math.min(...events.map((e) => e.id)));
  const fraMachines = new Set(machines.filter((m) => m.region === 'fra').map((m) => m.id));
  assert.equal(eventAggregate.fra.aggregate.count, events.filter((e) => fraMachines.has(e.machine_id)).length, 'aggregate where follows relationships');
});

test('aggregate: only the functions a selection reads are computed, through aliases and fragments, in one instance and over the fleet', async (t) => {
  const { server } = await seed(t);
  const full = `aggregate { count sum { cpus memory_mb } avg { cpus memory_mb } min { name created_at } max { name created_at } }`;
  const parts = `aggregate { n: count ...Sums ... on machines_aggregate_fields { mean: avg { memory_mb } } top: max { name } }`;
  const fragment = `fragment Sums on machines_aggregate_fields { sum { cpus } }`;
  const answer = ok(
    await server.gql(`{ instance(id: "alpha") { a: machines_aggregate { ${full} } b: machines_aggregate { ${parts} } }
      fleet { a: machines_aggregate { ${full} } b: machines_aggregate { ${parts} } } } ${fragment}`),
    'aggregates',
  );
  for (const side of [answer['instance'], answer['fleet']]) {
    const a = side.a.aggregate;
    assert.deepEqual(side.b.aggregate, { n: a.count, sum: { cpus: a.sum.cpus }, mean: { memory_mb: a.avg.memory_mb }, top: { name: a.max.name } });
  }
  assert.ok(answer['instance'].a.aggregate.count > 0);
});

test('groups: grouping keys, per-group aggregates, order by key or _count, limit', async (t) => {
  const { server, machines } = await seed(t);
  const byRegion = await readInstance(
    server,
    'alpha',
    `machines_groups(grouping_keys: [region], order_by: [{region: asc}]) {
      group_key { region state }
      group_aggregate { count states: count(columns: [state], distinct: true) sum { cpus } avg { memory_mb } min { created_at } max { cpus } }
    }`,
  );
  const expected = [...new Set(machines.map((m) => m.region))].sort().map((region) => {
    const rows = machines.filter((m) => m.region === region);
    return { region, rows };
  });
  assert.equal(byRegion.machines_groups.length, expected.length);
  byRegion.machines_groups.forEach((group: any, i: number) => {
    const { region, rows } = expected[i]!;
    assert.deepEqual(group.group_key, { region, state: null }, 'a column that is not a grouping key reads null in group_key');
    assert.equal(group.group_aggregate.count, rows.length);
    assert.equal(group.group_aggregate.states, new Set(rows.map((m) => m.state)).size);
    assert.deepEqual(group.group_aggregate.sum, { cpus: rows.reduce((s, m) => s + m.cpus, 0) });
    assertClose(group.group_aggregate.avg.memory_mb, rows.reduce((s, m) => s + m.memory_mb, 0) / rows.length, `avg memory_mb in ${region}`);
    assert.deepEqual(group.group_aggregate.min, { created_at: rows.map((m) => m.created_at).sort()[0] });
    assert.deepEqual(group.group_aggregate.max, { cpus: Math.max(...rows.map((m) => m.cpus)) });
  });

  const desc = await readInstance(server, 'alpha', `machines_groups(grouping_keys: [region], order_by: [{region: desc}]) { group_key { region } }`);
  assert.deepEqual(
    desc.machines_groups.map((g: any) => g.group_key.region),
    expected.map((e) => e.region).reverse(),
  );

  // Two keys, ordered by count (then by the keys, so the order is total), limited.
  const pairs = new Map<string, { region: string; state: string; count: number; cpus: number }>();
  for (const m of machines) {
    const key = `${m.region}/${m.state}`;
    const entry = pairs.get(key) ?? { region: m.region, state: m.state, count: 0, cpus: 0 };
    entry.count += 1;
    entry.cpus += m.cpus;
    pairs.set(key, entry);
  }
  const expectedPairs = [...pairs.values()].sort((a, b) => b.count - a.count || (a.region < b.region ? -1 : a.region > b.region ? 1 : 0) || (a.state < b.state ? -1 : a.state > b.state ? 1 : 0));
  const twoKeys = await readInstance(
    server,
    'alpha',
    `machines_groups(grouping_keys: [region, state], order_by: [{_count: desc}, {region: asc}, {state: asc}], limit: 3) { group_key { region state id } group_aggregate { count sum { cpus } } }`,
  );
  assert.deepEqual(
    twoKeys.machines_groups,
    expectedPairs.slice(0, 3).map((p) => ({ group_key: { region: p.region, state: p.state, id: null }, group_aggregate: { count: p.count, sum: { cpus: p.cpus } } })),
  );
  const ascCount = await readInstance(server, 'alpha', `machines_groups(grouping_keys: [region, state], order_by: [{_count: asc}, {region: desc}, {state: desc}]) { group_key { region state } group_aggregate { count } }`);
  const expectedAsc = [...pairs.values()].sort((a, b) => a.count - b.count || (a.region < b.region ? 1 : a.region > b.region ? -1 : 0) || (a.state < b.state ? 1 : a.state > b.state ? -1 : 0));
  assert.deepEqual(
    ascCount.machines_groups,
    expectedAsc.map((p) => ({ group_key: { region: p.region, state: p.state }, group_aggregate: { count: p.count } })),
  );

  const filtered = await readInstance(server, 'alpha', `machines_groups(grouping_keys: [cpu_kind], where: {cpus: {_gte: 2}}, order_by: [{cpu_kind: asc}]) { group_key { cpu_kind } group_aggregate { count } }`);
  const kinds = [...new Set(machines.filter((m) => m.cpus >= 2).map((m) => m.cpu_kind))].sort();
  assert.deepEqual(
    filtered.machines_groups,
    kinds.map((cpu_kind) => ({ group_key: { cpu_kind }, group_aggregate: { count: machines.filter((m) => m.cpus >= 2 && m.cpu_kind === cpu_kind).length } })),
  );
  const none = await readInstance(server, 'alpha', `machines_groups(grouping_keys: [region], where: {region: {_eq: "nowhere"}}) { group_key { region } }`);
  assert.deepEqual(none.machines_groups, []);

  assertCode(await queryInstance(server, 'alpha', `machines_groups(grouping_keys: [region], order_by: [{state: asc}]) { group_key { region } }`), 'INVALID_ARGUMENT', 'ordering groups by a column that is not a grouping key');
  assertCode(await queryInstance(server, 'alpha', `machines_groups(grouping_keys: [region], order_by: [{region: asc, _count: desc}]) { group_key { region } }`), 'INVALID_ARGUMENT', 'two columns in one groups order_by element');
  assertCode(await queryInstance(server, 'alpha', `machines_groups(grouping_keys: [region], limit: 1001) { group_key { region } }`), 'INVALID_ARGUMENT', 'groups limit above 1000');
});

interface Page {
  edges: Array<{ cursor: string; node: { id: string; region: string; cpus: number } }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

async function connectionPage(server: InProcessServer, id: string, args: string, after: string | null, first = 3): Promise<Page> {
  const instance = await readInstance(
    server,
    id,
    `machines_connection(first: $first, after: $after${args ? `, ${args}` : ''}) { edges { cursor node { id region cpus } } pageInfo { hasNextPage endCursor } }`,
    { first, after },
    '$first: Int, $after: String',
  );
  return instance.machines_connection as Page;
}

/** Pages through a connection; checks the page shape and returns every page. */
async function allPages(server: InProcessServer, id: string, args: string, first = 3): Promise<Page[]> {
  const pages: Page[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await connectionPage(server, id, args, after, first);
    pages.push(page);
    assert.ok(pages.length < 100, 'paging ends');
    if (page.edges.length > 0) assert.equal(page.pageInfo.endCursor, page.edges.at(-1)!.cursor, 'endCursor is the last edge cursor');
    if (!page.pageInfo.hasNextPage) break;
    assert.equal(page.edges.length, first, 'a page before the last one is full');
    after = page.pageInfo.endCursor;
    assert.equal(typeof after, 'string');
  }
  return pages;
}

test('connection: pages of 3 give every row exactly once, in order, with stable cursors', async (t) => {
  const { server, machines } = await seed(t);
  const idsOf = (pages: Page[]) => pages.flatMap((p) => p.edges.map((e) => e.node.id));

  const byPk = await allPages(server, 'alpha', '');
  assert.deepEqual(idsOf(byPk), machines.map((m) => m.id).sort(), 'without order_by, by primary key');
  assert.deepEqual(
    byPk.map((p) => p.edges.length),
    [3, 3, 3, 1],
  );
  assert.equal(byPk.at(-1)!.pageInfo.hasNextPage, false);

  // region has ties (4, 3 and 3 rows): ties are broken by the primary key.
  const byRegion = await allPages(server, 'alpha', 'order_by: [{region: asc}]');
  assert.deepEqual(idsOf(byRegion), [...machines].sort(byKeys<Machine>(['region', 'asc'], ['id', 'asc'])).map((m) => m.id));
  const cursors = byRegion.flatMap((p) => p.edges.map((e) => e.cursor));
  assert.equal(new Set(cursors).size, cursors.length, 'cursors are distinct');

  for (const args of ['order_by: [{cpus: desc}]', 'order_by: [{region: desc}, {memory_mb: asc}]', 'order_by: [{cpu_kind: asc}, {cpus: desc}]']) {
    const ids = idsOf(await allPages(server, 'alpha', args));
    assert.deepEqual([...ids].sort(), machines.map((m) => m.id).sort(), `${args}: every row exactly once`);
    const rows = ids.map((id) => machines.find((m) => m.id === id)!);
    const keys = args === 'order_by: [{cpus: desc}]' ? byKeys<Machine>(['cpus', 'desc']) : args.startsWith('order_by: [{region') ? byKeys<Machine>(['region', 'desc'], ['memory_mb', 'asc']) : byKeys<Machine>(['cpu_kind', 'asc'], ['cpus', 'desc']);
    for (let i = 1; i < rows.length; i++) assert.ok(keys(rows[i - 1]!, rows[i]!) <= 0, `${args}: in order at ${i}`);
  }

  const filtered = await allPages(server, 'alpha', 'where: {cpus: {_gte: 2}}, order_by: [{memory_mb: desc}]', 2);
  assert.deepEqual(idsOf(filtered).sort(), machines.filter((m) => m.cpus >= 2).map((m) => m.id).sort());

  // The same cursor gives the same page, again and again.
  const second = await connectionPage(server, 'alpha', 'order_by: [{region: asc}]', byRegion[0]!.pageInfo.endCursor);
  assert.deepEqual(second, byRegion[1]);
  assert.deepEqual(await connectionPage(server, 'alpha', 'order_by: [{region: asc}]', byRegion[0]!.pageInfo.endCursor), second);

  const everything = await connectionPage(server, 'alpha', '', null, 50);
  assert.equal(everything.edges.length, machines.length);
  assert.equal(everything.pageInfo.hasNextPage, false);
  const nothing = await connectionPage(server, 'alpha', 'where: {region: {_eq: "nowhere"}}', null);
  assert.deepEqual(nothing.edges, []);
  assert.equal(nothing.pageInfo.hasNextPage, false);
  assert.equal(nothing.pageInfo.endCursor, null);
});

test('connection: a cursor is a position, not an offset: rows inserted or deleted before it do not shift the next page', async (t) => {
  const { server } = await seed(t);
  const first = await connectionPage(server, 'alpha', 'order_by: [{id: asc}]', null);
  assert.deepEqual(
    first.edges.map((e) => e.node.id),
    ['m01', 'm02', 'm03'],
  );
  ok(await server.gql(insertMachines, { id: 'alpha', objects: [{ ...machine(1), id: 'm00' }] }));
  const next = await connectionPage(server, 'alpha', 'order_by: [{id: asc}]', first.pageInfo.endCursor);
  assert.deepEqual(
    next.edges.map((e) => e.node.id),
    ['m04', 'm05', 'm06'],
    'a row inserted before the cursor neither repeats m03 nor is skipped into',
  );
  ok(await server.gql(`mutation { delete_machines(instance_id: "alpha", where: {id: {_in: ["m02", "m03"]}}) { affected_rows } }`));
  const afterDelete = await connectionPage(server, 'alpha', 'order_by: [{id: asc}]', first.pageInfo.endCursor);
  assert.deepEqual(
    afterDelete.edges.map((e) => e.node.id),
    ['m04', 'm05', 'm06'],
    'the cursor still works after its own row is gone',
  );
});

test('relationships both ways, with per-parent where/order/limit, and EXISTS filters', async (t) => {
  const { server, machines, events } = await seed(t);
  const eventsFor = (id: string) => events.filter((e) => e.machine_id === id);
  const read = await readInstance(
    server,
    'alpha',
    `machines(order_by: [{id: asc}]) {
      id
      machine_events(order_by: [{at: asc}]) { ${eventFields} _instance_id }
      latest: machine_events(order_by: [{at: desc}], limit: 1) { at }
      skipped: machine_events(order_by: [{at: asc}], offset: 1) { id }
      errors: machine_events(where: {status: {_eq: "error"}}) { id }
    }
    machine_events(order_by: [{id: asc}]) { id machine { id name _instance_id machine_events(order_by: [{id: asc}]) { id } } }`,
  );
  assert.equal(read.machines.length, machines.length);
  for (const row of read.machines) {
    const own = [...eventsFor(row.id)].sort((a, b) => (a.at < b.at ? -1 : 1));
    assert.deepEqual(
      row.machine_events,
      own.map((e) => ({ ...e, _instance_id: 'alpha' })),
      `${row.id}: its events`,
    );
    assert.deepEqual(row.latest, own.length > 0 ? [{ at: own.at(-1)!.at }] : [], `${row.id}: limit applies per parent`);
    assert.deepEqual(
      row.skipped,
      own.slice(1).map((e) => ({ id: e.id })),
      `${row.id}: offset applies per parent`,
    );
    assert.deepEqual(
      row.errors.map((e: { id: number }) => e.id).sort(),
      own
        .filter((e) => e.status === 'error')
        .map((e) => e.id)
        .sort(),
    );
  }
  assert.equal(read.machine_events.length, events.length);
  for (const row of read.machine_events) {
    const event = events.find((e) => e.id === row.id)!;
    const parent = machines.find((m) => m.id === event.machine_id)!;
    assert.equal(row.machine.id, parent.id);
    assert.equal(row.machine.name, parent.name);
    assert.equal(row.machine._instance_id, 'alpha');
    assert.deepEqual(
      row.machine.machine_events.map((e: { id: number }) => e.id),
      eventsFor(parent.id)
        .map((e) => e.id)
        .sort((a, b) => a - b),
    );
  }

  const ids = async (selection: string) => (await readInstance(server, 'alpha', selection)).rows.map((r: { id: unknown }) => r.id);
  const withExit = new Set(events.filter((e) => e.type === 'exit').map((e) => e.machine_id));
  assert.deepEqual(await ids(`rows: machines(where: {machine_events: {type: {_eq: "exit"}}}, order_by: [{id: asc}]) { id }`), [...withExit].sort(), 'EXISTS: each machine once, however many events match');
  const withEvents = new Set(events.map((e) => e.machine_id));
  assert.deepEqual(await ids(`rows: machines(where: {machine_events: {}}, order_by: [{id: asc}]) { id }`), [...withEvents].sort());
  assert.deepEqual(
    await ids(`rows: machines(where: {_not: {machine_events: {}}}, order_by: [{id: asc}]) { id }`),
    machines
      .map((m) => m.id)
      .filter((id) => !withEvents.has(id))
      .sort(),
  );
  const fra = new Set(machines.filter((m) => m.region === 'fra').map((m) => m.id));
  assert.deepEqual(
    await ids(`rows: machine_events(where: {machine: {region: {_eq: "fra"}}}, order_by: [{id: asc}]) { id }`),
    events
      .filter((e) => fra.has(e.machine_id))
      .map((e) => e.id)
      .sort((a, b) => a - b),
  );
  assert.deepEqual(
    await ids(`rows: machine_events(where: {machine: {machine_events: {type: {_eq: "exit"}}}, type: {_neq: "exit"}}, order_by: [{id: asc}]) { id }`),
    events
      .filter((e) => withExit.has(e.machine_id) && e.type !== 'exit')
      .map((e) => e.id)
      .sort((a, b) => a - b),
    'relationship filters nest',
  );
});

test('insert: affected_rows, returning, on_conflict update (with where) and do-nothing', async (t) => {
  const { server, machines } = await seed(t);
  const upsert = `mutation($objects: [machines_insert_input!]!, $onConflict: machines_on_conflict) {
    insert_machines(instance_id: "alpha", objects: $objects, on_conflict: $onConflict) { affected_rows returning { id name region state } }
  }`;
  const m1 = machines[0]!;
  const updated = ok(
    await server.gql(upsert, {
      objects: [
        { ...m1, name: 'renamed', region: 'ams' },
        { ...machine(11), id: 'm11' },
      ],
      onConflict: { constraint: 'machines_pkey', update_columns: ['name'] },
    }),
  )['insert_machines'];
  assert.equal(updated.affected_rows, 2);
  assert.deepEqual(
    [...updated.returning].sort(byKeys<{ id: string }>(['id', 'asc'])),
    [
      { id: 'm01', name: 'renamed', region: m1.region, state: m1.state },
      { id: 'm11', name: 'web-11', region: machine(11).region, state: machine(11).state },
    ],
    'only update_columns change on conflict',
  );

  const nothing = ok(
    await server.gql(upsert, {
      objects: [
        { ...machines[1]!, name: 'ignored' },
        { ...machine(12), id: 'm12' },
      ],
      onConflict: { constraint: 'machines_pkey', update_columns: [] },
    }),
  )['insert_machines'];
  assert.equal(nothing.affected_rows, 1, 'empty update_columns: the conflicting row is left alone');
  assert.deepEqual(
    nothing.returning.map((r: { id: string }) => r.id),
    ['m12'],
  );

  const failed = machines.filter((m) => m.state === 'failed').map((m) => m.id);
  const conditional = ok(
    await server.gql(upsert, {
      objects: machines.slice(1, 7).map((m) => ({ ...m, state: 'created' })),
      onConflict: { constraint: 'machines_pkey', update_columns: ['state'], where: { state: { _eq: 'failed' } } },
    }),
  )['insert_machines'];
  const expectedIds = machines
    .slice(1, 7)
    .filter((m) => failed.includes(m.id))
    .map((m) => m.id);
  assert.equal(conditional.affected_rows, expectedIds.length, 'on_conflict where restricts which existing rows are updated');
  assert.deepEqual(conditional.returning.map((r: { id: string }) => r.id).sort(), expectedIds);

  const after = await readInstance(server, 'alpha', `machines(order_by: [{id: asc}]) { id name region state }`);
  const expected = [
    ...machines.map((m) => ({
      id: m.id,
      name: m.id === 'm01' ? 'renamed' : m.name,
      region: m.region,
      state: expectedIds.includes(m.id) ? 'created' : m.state,
    })),
    { id: 'm11', name: 'web-11', region: machine(11).region, state: machine(11).state },
    { id: 'm12', name: 'web-12', region: machine(12).region, state: machine(12).state },
  ].sort(byKeys<{ id: string }>(['id', 'asc']));
  assert.deepEqual(after.machines, expected);

  const empty = ok(await server.gql(`mutation { insert_machines(instance_id: "alpha", objects: []) { affected_rows returning { id } } }`))['insert_machines'];
  assert.deepEqual(empty, { affected_rows: 0, returning: [] });
});

test('update: _set and _inc, affected_rows and returning; a failing row rolls the whole update back', async (t) => {
  const { server, machines } = await seed(t);
  const fra = machines.filter((m) => m.region === 'fra');
  const result = ok(
    await server.gql(`mutation {
      update_machines(instance_id: "alpha", where: {region: {_eq: "fra"}}, _set: {image: "registry/app:new", updated_at: "2024-03-01T00:00:00.000Z"}, _inc: {cpus: 2, memory_mb: "-128"}) {
        affected_rows returning { id image cpus memory_mb updated_at _instance_id }
      }
    }`),
  )['update_machines'];
  assert.equal(result.affected_rows, fra.length);
  assert.deepEqual(
    [...result.returning].sort(byKeys<{ id: string }>(['id', 'asc'])),
    fra.map((m) => ({ id: m.id, image: 'registry/app:new', cpus: m.cpus + 2, memory_mb: m.memory_mb - 128, updated_at: '2024-03-01T00:00:00.000Z', _instance_id: 'alpha' })),
  );
  const after = await readInstance(server, 'alpha', `machines(order_by: [{id: asc}]) { id image cpus memory_mb }`);
  assert.deepEqual(
    after.machines,
    machines.map((m) => (m.region === 'fra' ? { id: m.id, image: 'registry/app:new', cpus: m.cpus + 2, memory_mb: m.memory_mb - 128 } : { id: m.id, image: m.image, cpus: m.cpus, memory_mb: m.memory_mb })),
    'rows outside where are untouched',
  );

  const none = ok(await server.gql(`mutation { update_machines(instance_id: "alpha", where: {id: {_eq: "nope"}}, _set: {name: "x"}) { affected_rows returning { id } } }`))['update_machines'];
  assert.deepEqual(none, { affected_rows: 0, returning: [] });

  // cpus - 2 violates CHECK (cpus > 0) only for the machines with 1 or 2 cpus: nothing at all may change.
  assertCode(await server.gql(`mutation { update_machines(instance_id: "alpha", where: {}, _inc: {cpus: -2}) { affected_rows } }`), 'CONSTRAINT_VIOLATION', 'update breaking a CHECK on some rows');
  assertCode(await server.gql(`mutation { update_machines(instance_id: "alpha", where: {id: {_eq: "m01"}}, _set: {state: "bogus"}) { affected_rows } }`), 'CONSTRAINT_VIOLATION', 'update breaking a CHECK');
  const unchanged = await readInstance(server, 'alpha', `machines(order_by: [{id: asc}]) { id image cpus memory_mb }`);
  assert.deepEqual(unchanged.machines, after.machines, 'a failed update changes nothing');
});

test('delete: where, affected_rows, returning, ON DELETE CASCADE', async (t) => {
  const { server, machines, events } = await seed(t);
  const exits = events.filter((e) => e.type === 'exit');
  const deleted = ok(await server.gql(`mutation { delete_machine_events(instance_id: "alpha", where: {type: {_eq: "exit"}}) { affected_rows returning { ${eventFields} } } }`))['delete_machine_events'];
  assert.equal(deleted.affected_rows, exits.length);
  assert.deepEqual(
    [...deleted.returning].sort((a: MachineEvent, b: MachineEvent) => a.id - b.id),
    exits,
  );
  const remaining = events.filter((e) => e.type !== 'exit');
  const count = await readInstance(server, 'alpha', `machine_events_aggregate { aggregate { count } }`);
  assert.equal(count.machine_events_aggregate.aggregate.count, remaining.length);

  const target = machines.find((m) => remaining.some((e) => e.machine_id === m.id))!;
  const gone = ok(await server.gql(`mutation($id: String!) { delete_machines(instance_id: "alpha", where: {id: {_eq: $id}}) { affected_rows returning { id name } } }`, { id: target.id }))['delete_machines'];
  assert.deepEqual(gone, { affected_rows: 1, returning: [{ id: target.id, name: target.name }] });
  const cascaded = await readInstance(server, 'alpha', `machine_events_aggregate(where: {machine_id: {_eq: "${target.id}"}}) { aggregate { count } } machines_aggregate { aggregate { count } }`);
  assert.equal(cascaded.machine_events_aggregate.aggregate.count, 0, 'its events went with it (ON DELETE CASCADE)');
  assert.equal(cascaded.machines_aggregate.aggregate.count, machines.length - 1);

  const none = ok(await server.gql(`mutation { delete_machines(instance_id: "alpha", where: {region: {_eq: "nowhere"}}) { affected_rows returning { id } } }`))['delete_machines'];
  assert.deepEqual(none, { affected_rows: 0, returning: [] });
  const beta = await readInstance(server, 'beta', `machines { id }`);
  assert.deepEqual(beta.machines, [{ id: 'b01' }], 'another instance is untouched');
});

test('by_pk mutations return the row, or null when there is none', async (t) => {
  const { server, machines, events } = await seed(t);
  const m4 = machines[3]!;
  const updated = ok(
    await server.gql(`mutation { update_machines_by_pk(instance_id: "alpha", pk_columns: {id: "m04"}, _set: {name: "renamed"}, _inc: {cpus: 1}) { id name cpus region _instance_id } }`),
  )['update_machines_by_pk'];
  assert.deepEqual(updated, { id: 'm04', name: 'renamed', cpus: m4.cpus + 1, region: m4.region, _instance_id: 'alpha' });
  const missing = await server.gql(`mutation { update_machines_by_pk(instance_id: "alpha", pk_columns: {id: "nope"}, _set: {name: "x"}) { id } }`);
  assert.deepEqual(ok(missing)['update_machines_by_pk'], null);

  const event = events[0]!;
  const eventUpdated = ok(await server.gql(`mutation($id: BigInt!) { update_machine_events_by_pk(instance_id: "alpha", pk_columns: {id: $id}, _set: {status: "patched"}) { id status machine { id } } }`, { id: event.id }))[
    'update_machine_events_by_pk'
  ];
  assert.deepEqual(eventUpdated, { id: event.id, status: 'patched', machine: { id: event.machine_id } });

  const deleted = ok(await server.gql(`mutation { delete_machines_by_pk(instance_id: "alpha", id: "m05") { id name } }`))['delete_machines_by_pk'];
  assert.deepEqual(deleted, { id: 'm05', name: machines[4]!.name });
  const again = ok(await server.gql(`mutation { delete_machines_by_pk(instance_id: "alpha", id: "m05") { id } }`))['delete_machines_by_pk'];
  assert.equal(again, null);
  const eventDeleted = ok(await server.gql(`mutation($id: BigInt!) { delete_machine_events_by_pk(instance_id: "alpha", id: $id) { id type } }`, { id: String(event.id) }))['delete_machine_events_by_pk'];
  assert.deepEqual(eventDeleted, { id: event.id, type: event.type });

  const after = await readInstance(server, 'alpha', `m4: machines_by_pk(id: "m04") { name cpus } m5: machines_by_pk(id: "m05") { id } e: machine_events_by_pk(id: ${event.id}) { id }`);
  assert.deepEqual(after, { m4: { name: 'renamed', cpus: m4.cpus + 1 }, m5: null, e: null });
});

test('errors carry stable codes and a failing mutation writes nothing', async (t) => {
  const { server, machines } = await seed(t);
  const snapshot = async () => readInstance(server, 'alpha', `machines(order_by: [{id: asc}]) { ${machineFields} } machine_events(order_by: [{id: asc}]) { ${eventFields} }`);
  const before = await snapshot();

  assertCode(await server.gql(insertMachines, { id: 'alpha', objects: [{ ...machine(20), id: 'm20' }, machines[0]] }), 'CONSTRAINT_VIOLATION', 'a duplicate primary key');
  assertCode(await server.gql(insertMachines, { id: 'alpha', objects: [{ ...machine(21), id: 'm21' }, { ...machine(22), id: 'm22', cpus: 0 }] }), 'CONSTRAINT_VIOLATION', 'a CHECK constraint');
  assertCode(await server.gql(insertEvents, { id: 'alpha', objects: [{ machine_id: 'm01', type: 'start', status: 'ok', at: 'x' }, { machine_id: 'ghost', type: 'start', status: 'ok', at: 'x' }] }), 'CONSTRAINT_VIOLATION', 'a foreign key');
  const { name: _name, ...withoutName } = machine(23);
  assertCode(await server.gql(insertMachines, { id: 'alpha', objects: [{ ...withoutName, id: 'm23' }] }), ['CONSTRAINT_VIOLATION', 'INVALID_ARGUMENT'], 'a NOT NULL column left out');
  assertCode(await server.gql(`mutation { update_machines(instance_id: "alpha", where: {id: {_eq: "m01"}}, _set: {id: "m02"}) { affected_rows } }`), 'CONSTRAINT_VIOLATION', 'update onto an existing key');
  assertCode(await server.gql(`mutation { delete_machines(instance_id: "alpha", where: {name: {_eq: null}}) { affected_rows } }`), 'INVALID_ARGUMENT', '_eq: null in a delete');
  assert.deepEqual(await snapshot(), before, 'nothing partial was written');

  assertCode(await queryInstance(server, 'alpha', `machines(limit: 1001) { id }`), 'INVALID_ARGUMENT', 'limit above 1000');
  assertCode(await queryInstance(server, 'alpha', `machines(limit: -1) { id }`), 'INVALID_ARGUMENT', 'negative limit');
  assertCode(await queryInstance(server, 'alpha', `machines(offset: -1) { id }`), 'INVALID_ARGUMENT', 'negative offset');
  assertCode(await queryInstance(server, 'alpha', `machines(order_by: [{id: asc, name: desc}]) { id }`), 'INVALID_ARGUMENT', 'two columns in one order_by element');
  assertCode(await queryInstance(server, 'alpha', `machines(where: {name: {_eq: null}}) { id }`), 'INVALID_ARGUMENT', '_eq: null on a String');
  assertCode(await queryInstance(server, 'alpha', `machines(where: {cpus: {_eq: null}}) { id }`), 'INVALID_ARGUMENT', '_eq: null on a BigInt');
  assertCode(await queryInstance(server, 'alpha', `machines(where: {cpus: {_gt: null}}) { id }`), 'INVALID_ARGUMENT', '_gt: null');
  assertCode(await queryInstance(server, 'alpha', `machines { id machine_events(limit: 5000) { id } }`), 'INVALID_ARGUMENT', 'relationship limit above 1000');
  assertCode(await queryInstance(server, 'alpha', `machines_connection(first: 3, after: "not a cursor") { edges { cursor } }`), 'INVALID_ARGUMENT', 'a cursor that was never given out');
  assertCode(await queryInstance(server, 'nope', `machines { id }`), 'INSTANCE_NOT_FOUND', 'reading an unknown instance');
  assertCode(await server.gql(insertMachines, { id: 'nope', objects: [machine(30)] }), 'INSTANCE_NOT_FOUND', 'writing an unknown instance');
  assertCode(await server.gql(insertMachines, { id: '../alpha', objects: [machine(30)] }), 'INVALID_INSTANCE_ID', 'a bad instance id');
  assertCode(await server.gql(`mutation { delete_machines_by_pk(instance_id: "nope", id: "m01") { id } }`), 'INSTANCE_NOT_FOUND');
  assert.deepEqual(await snapshot(), before);
});

test('limit defaults to 100 and may go to 1000; 100 machines with their events take a bounded number of SQL statements', async (t) => {
  const server = await startServer(t);
  await createInstances(server, 'bulk');
  const count = 120;
  const machines = Array.from({ length: count }, (_, i) => ({ ...machine((i % 28) + 1), id: `bulk-${String(i).padStart(3, '0')}`, name: `bulk-${i}` }));
  assert.equal(ok(await server.gql(insertMachines, { id: 'bulk', objects: machines }))['insert_machines'].affected_rows, count);
  const events = machines.flatMap((m) => [0, 1, 2].map((k) => ({ machine_id: m.id, type: eventTypes[k]!, status: 'ok', at: `2024-05-01T0${k}:00:00.000Z` })));
  assert.equal(ok(await server.gql(insertEvents, { id: 'bulk', objects: events }))['insert_machine_events'].affected_rows, events.length);

  const byDefault = await readInstance(server, 'bulk', `machines { id } machine_events { id }`);
  assert.equal(byDefault.machines.length, 100, 'limit defaults to 100');
  assert.equal(byDefault.machine_events.length, 100);
  const max = await readInstance(server, 'bulk', `machines(limit: 1000) { id } machine_events(limit: 1000) { id }`);
  assert.equal(max.machines.length, count);
  assert.equal(max.machine_events.length, events.length);

  const counter = await statementCounter();
  assert.ok(counter, 'the storage layer exposes no statement counter (expected e.g. storageStats.statementsExecuted in src/storage), so the dataloader batching cannot be checked');
  await readInstance(server, 'bulk', `machines(limit: 1) { id }`); // the instance file is open and warm
  const query = `machines(limit: 100, order_by: [{id: asc}]) { id machine_events(order_by: [{at: asc}]) { id type machine_id } }`;
  const start = counter();
  const read = await readInstance(server, 'bulk', query);
  const statements = counter() - start;
  assert.equal(read.machines.length, 100);
  for (const m of read.machines) {
    assert.deepEqual(
      m.machine_events.map((e: { type: string; machine_id: string }) => [e.type, e.machine_id]),
      eventTypes.map((type) => [type, m.id]),
    );
  }
  t.diagnostic(`statements for 100 machines with their events: ${statements}`);
  assert.ok(statements <= 5, `100 machines with their events ran ${statements} SQL statements; at most 5 expected (relationships batched)`);

  // The other direction: 300 events, each with its machine, is batched too.
  const startBack = counter();
  const back = await readInstance(server, 'bulk', `machine_events(limit: 300, order_by: [{id: asc}]) { id machine_id machine { id name } }`);
  const backStatements = counter() - startBack;
  assert.equal(back.machine_events.length, 300);
  for (const e of back.machine_events) assert.equal(e.machine.id, e.machine_id);
  t.diagnostic(`statements for 300 events with their machine: ${backStatements}`);
  assert.ok(backStatements <= 5, `300 events with their machine ran ${backStatements} SQL statements; at most 5 expected`);
});
