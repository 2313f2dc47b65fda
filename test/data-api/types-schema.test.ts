import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertClose, assertCode, createInstances, enumValues, fieldArgs, ok, queryInstance, readInstance, typeFields, typesMigrations } from '../helpers/data-api.js';
import { startServer, type InProcessServer } from '../helpers/servers.js';

// The type mapping and the naming rules, against test/fixtures/types-migrations: a column of every
// declared type, a composite key, a table without a key, foreign keys to self and twice to one
// parent, a unique index as a conflict target, and SQL keywords as names.

const typedColumns = 'id i i_null r r_null f d n dec t t_null vc c b b_req flag flag_null doc doc_req at at_req day ts untyped anything';

async function start(t: { after(fn: () => unknown): void }): Promise<InProcessServer> {
  const server = await startServer(t, { migrationsDir: typesMigrations });
  await createInstances(server, 'types');
  return server;
}

const b64 = (bytes: number[] | string) => Buffer.from(bytes as never).toString('base64');

const insertTyped = `mutation($objects: [typed_insert_input!]!) { insert_typed(instance_id: "types", objects: $objects) { affected_rows returning { ${typedColumns} _instance_id } } }`;

test('every declared type maps to its GraphQL type; NOT NULL columns are non-null', async (t) => {
  const server = await start(t);
  const fields = await typeFields(server, 'typed');
  const expected: Record<string, string> = {
    i: 'BigInt!',
    i_null: 'BigInt',
    r: 'Float!',
    r_null: 'Float',
    f: 'Float',
    d: 'Float',
    n: 'Float',
    dec: 'Float',
    t: 'String!',
    t_null: 'String',
    vc: 'String',
    c: 'String',
    b: 'Base64',
    b_req: 'Base64!',
    flag: 'Boolean!',
    flag_null: 'Boolean',
    doc: 'JSON',
    doc_req: 'JSON!',
    at: 'String',
    at_req: 'String!',
    day: 'String',
    ts: 'String',
    untyped: 'JSON',
    anything: 'JSON',
    _instance_id: 'ID!',
  };
  for (const [name, type] of Object.entries(expected)) assert.equal(fields.get(name), type, `typed.${name}`);
  assert.ok(['BigInt', 'BigInt!'].includes(fields.get('id')!), 'typed.id is a BigInt');
  assert.ok(!fields.has('_rowid'), 'a table with a primary key has no _rowid');

  const scalar = await server.gql(`{ __type(name: "Base64") { kind } }`);
  assert.equal(ok(scalar)['__type'].kind, 'SCALAR');

  const sum = await typeFields(server, 'typed_sum_fields');
  assert.deepEqual([...sum.keys()].sort(), ['d', 'dec', 'f', 'i', 'i_null', 'id', 'n', 'r', 'r_null'], 'sum has the integer, real and numeric columns');
  assert.equal(sum.get('i')?.replace('!', ''), 'BigInt', 'sum of an INTEGER column is a BigInt');
  assert.equal(sum.get('r')?.replace('!', ''), 'Float');
  assert.equal(sum.get('n')?.replace('!', ''), 'Float');
  const avg = await typeFields(server, 'typed_avg_fields');
  assert.deepEqual([...avg.keys()].sort(), [...sum.keys()].sort());
  for (const [name, type] of avg) assert.equal(type.replace('!', ''), 'Float', `avg.${name} is a Float`);
  const min = await typeFields(server, 'typed_min_fields');
  assert.deepEqual([...min.keys()].sort(), ['at', 'at_req', 'c', 'd', 'day', 'dec', 'f', 'i', 'i_null', 'id', 'n', 'r', 'r_null', 't', 't_null', 'ts', 'vc'], 'min/max have the numeric, text and datetime columns');
  assert.equal(min.get('i')?.replace('!', ''), 'BigInt');
  assert.equal(min.get('t')?.replace('!', ''), 'String');
  assert.equal(min.get('at')?.replace('!', ''), 'String');
  assert.deepEqual([...(await typeFields(server, 'typed_max_fields')).keys()].sort(), [...min.keys()].sort());
  const inc = await typeFields(server, 'typed_inc_input');
  for (const name of ['i', 'i_null', 'r', 'r_null', 'f', 'd', 'n', 'dec']) assert.ok(inc.has(name), `_inc has ${name}`);
  for (const name of ['t', 'vc', 'b', 'flag', 'doc', 'at', 'untyped', 'anything']) assert.ok(!inc.has(name), `_inc has no ${name}`);
  const boolExp = await typeFields(server, 'typed_bool_exp');
  assert.equal(boolExp.get('i'), 'BigInt_comparison_exp');
  assert.equal(boolExp.get('r'), 'Float_comparison_exp');
  assert.equal(boolExp.get('t'), 'String_comparison_exp');
  assert.equal(boolExp.get('b'), 'Base64_comparison_exp');
  assert.equal(boolExp.get('flag'), 'Boolean_comparison_exp');
  assert.equal(boolExp.get('at'), 'String_comparison_exp');
  assert.equal(boolExp.get('doc'), 'JSON_comparison_exp');
  const set = await typeFields(server, 'typed_set_input');
  assert.equal(set.get('b'), 'Base64');
  assert.equal(set.get('i'), 'BigInt');
});

test('values of every type round-trip exactly, BigInt beyond 2^53 as strings', async (t) => {
  const server = await start(t);
  const full = {
    i: '9007199254740993',
    i_null: '-9223372036854775808',
    r: 0.1,
    r_null: -2.5e-300,
    f: 1e300,
    d: 3.141592653589793,
    n: 12.5,
    dec: 3,
    t: 'plain',
    t_null: 'ünïcødé ✓ 😀 中文',
    vc: `it's "quoted"`,
    c: 'line1\nline2\ttab \\ backslash',
    b: b64([0, 1, 2, 253, 254, 255, 0, 128, 10, 13]),
    b_req: b64('hello'),
    flag: true,
    flag_null: false,
    doc: { a: [1, 'x', null, true], b: { c: 1.5, d: 'ü' } },
    doc_req: [1, 2, { three: 3 }],
    at: '2024-01-02T03:04:05.678Z',
    at_req: '2023-12-31T23:59:59.999Z',
    day: '2024-01-02',
    ts: '2024-01-02 03:04:05',
    untyped: 42,
    anything: 'hello',
  };
  const extremes = { i: '9223372036854775807', i_null: '9007199254740992', r: -0.0001, t: 'max', untyped: 1.5, anything: -7 };
  const safe = { i: 42, i_null: '123', r: 3, t: 'safe', flag: false, untyped: 'text', anything: 2.25 };
  const negativeSafe = { i: -9007199254740991, i_null: 9007199254740991, r: 0, t: 'neg' };
  const inserted = ok(await server.gql(insertTyped, { objects: [full, extremes, safe, negativeSafe] }))['insert_typed'];
  assert.equal(inserted.affected_rows, 4);
  const rows = [...inserted.returning].sort((a: { t: string }, b: { t: string }) => ['plain', 'max', 'safe', 'neg'].indexOf(a.t) - ['plain', 'max', 'safe', 'neg'].indexOf(b.t));
  const defaults = { b_req: '', flag: false, doc_req: {}, at_req: '1970-01-01T00:00:00.000Z' };
  const nulls = Object.fromEntries(typedColumns.split(' ').map((c) => [c, null]));
  const expected = [
    { ...full, _instance_id: 'types' },
    { ...nulls, ...defaults, ...extremes, _instance_id: 'types' },
    { ...nulls, ...defaults, ...safe, i_null: 123, _instance_id: 'types' },
    { ...nulls, ...defaults, ...negativeSafe, _instance_id: 'types' },
  ];
  rows.forEach((row: Record<string, unknown>, index: number) => {
    const { id, ...rest } = row;
    assert.equal(typeof id, 'number', 'the rowid key is a safe integer');
    const { id: _expectedId, ...want } = expected[index] as Record<string, unknown>;
    assert.deepEqual(rest, want, `returning row ${index}`);
  });
  assert.equal(rows[0].i, '9007199254740993', '2^53 + 1 is exact, as a string');
  assert.equal(rows[0].i_null, '-9223372036854775808', 'the smallest 64-bit integer is exact, as a string');
  assert.equal(rows[1].i, '9223372036854775807', 'the largest 64-bit integer is exact, as a string');
  assert.equal(rows[2].i, 42, 'a safe integer is a JSON number');
  assert.equal(rows[3].i, -9007199254740991, '-(2^53 - 1) is still a number');
  assert.deepEqual([...Buffer.from(rows[0].b, 'base64')], [0, 1, 2, 253, 254, 255, 0, 128, 10, 13], 'blob bytes are exact');

  // Read back through a query (not only returning) and by key.
  const read = await readInstance(server, 'types', `typed(order_by: [{id: asc}]) { ${typedColumns} _instance_id }`);
  assert.deepEqual(read.typed, [...rows].sort((a, b) => a.id - b.id));
  const byKey = await readInstance(server, 'types', `typed_by_pk(id: ${rows[0].id}) { ${typedColumns} }`);
  assert.deepEqual(byKey.typed_by_pk, (({ _instance_id, ...r }) => r)(rows[0]));

  // Filters bind every type exactly.
  const ts = async (where: string) => (await readInstance(server, 'types', `typed(where: ${where}, order_by: [{t: asc}]) { t }`)).typed.map((r: { t: string }) => r.t);
  assert.deepEqual(await ts('{i: {_eq: "9007199254740993"}}'), ['plain'], 'no rounding to 2^53');
  assert.deepEqual(await ts('{i: {_gt: "9007199254740993"}}'), ['max']);
  assert.deepEqual(await ts('{i: {_eq: 42}}'), ['safe']);
  assert.deepEqual(await ts('{i: {_in: ["9223372036854775807", -9007199254740991]}}'), ['max', 'neg']);
  assert.deepEqual(await ts('{i_null: {_eq: "-9223372036854775808"}}'), ['plain']);
  assert.deepEqual(await ts('{i_null: {_is_null: true}}'), []);
  assert.deepEqual(await ts('{r: {_eq: 0.1}}'), ['plain']);
  assert.deepEqual(await ts('{r: {_lt: 0}}'), ['max']);
  assert.deepEqual(await ts('{n: {_eq: 12.5}}'), ['plain']);
  assert.deepEqual(await ts('{dec: {_eq: 3}}'), ['plain']);
  assert.deepEqual(await ts('{flag: {_eq: true}}'), ['plain']);
  assert.deepEqual(await ts('{flag: {_eq: false}}'), ['max', 'neg', 'safe']);
  assert.deepEqual(await ts('{flag_null: {_eq: false}}'), ['plain']);
  assert.deepEqual(await ts(`{b: {_eq: "${full.b}"}}`), ['plain'], 'a blob compares by its bytes');
  assert.deepEqual(await ts(`{b_req: {_eq: ""}}`), ['max', 'neg', 'safe']);
  assert.deepEqual(await ts('{at: {_gte: "2024-01-01"}}'), ['plain']);
  assert.deepEqual(await ts('{doc: {_is_null: false}}'), ['plain']);
  assert.deepEqual(await ts('{untyped: {_eq: 42}}'), ['plain']);
  assert.deepEqual(await ts('{anything: {_eq: "hello"}}'), ['plain']);
  assert.deepEqual(await ts(`{vc: {_eq: "it's \\"quoted\\""}}`), ['plain']);

  // Aggregates keep integers exact and have the column's own type.
  const agg = await readInstance(server, 'types', `big: typed_aggregate(where: {i: {_in: ["9007199254740993", 42]}}) { aggregate { sum { i r } avg { i } } }`);
  // Over all four rows the sum of i would overflow 64 bits; count, min and max are not sums and must still answer.
  Object.assign(agg, await readInstance(server, 'types', `all: typed_aggregate { aggregate { count min { i i_null t at r } max { i i_null t at r } } }`));
  assert.equal(agg.big.aggregate.sum.i, '9007199254741035', 'sum of big integers is exact');
  assertClose(agg.big.aggregate.sum.r, 3.1, 'sum of REAL');
  assertClose(agg.big.aggregate.avg.i, (9007199254740993 + 42) / 2, 'avg is a Float');
  assert.equal(agg.all.aggregate.count, 4);
  assert.deepEqual(agg.all.aggregate.min, { i: -9007199254740991, i_null: '-9223372036854775808', t: 'max', at: '2024-01-02T03:04:05.678Z', r: -0.0001 });
  assert.deepEqual(agg.all.aggregate.max, { i: '9223372036854775807', i_null: '9007199254740992', t: 'safe', at: '2024-01-02T03:04:05.678Z', r: 3 });

  // _inc keeps 64-bit integers exact; _set writes every type.
  const plainId = rows[0].id;
  const updated = ok(
    await server.gql(
      `mutation($id: BigInt!, $b: Base64, $doc: JSON) { update_typed_by_pk(instance_id: "types", pk_columns: {id: $id}, _inc: {i: 1, r: 0.5}, _set: {b: $b, doc: $doc, flag: false, flag_null: null, t_null: null, at: "2025-06-01T00:00:00.000Z"}) { i r b doc flag flag_null t_null at } }`,
      { id: plainId, b: b64([9, 8, 7]), doc: { replaced: true } },
    ),
  )['update_typed_by_pk'];
  assert.deepEqual(updated, { i: '9007199254740994', r: 0.6, b: b64([9, 8, 7]), doc: { replaced: true }, flag: false, flag_null: null, t_null: null, at: '2025-06-01T00:00:00.000Z' });

  // Malformed values are refused with a code, before anything is written.
  for (const [literal, what] of [
    ['i: "abc"', 'a BigInt that is not a number'],
    ['i: "99999999999999999999"', 'a BigInt beyond 64 bits'],
    ['i: 1.5', 'a BigInt with a fraction'],
    ['i: 1, b: "not base64!!"', 'a Base64 value that is not base64'],
  ] as const) {
    assertCode(await server.gql(`mutation { insert_typed(instance_id: "types", objects: [{${literal}, r: 1, t: "bad"}]) { affected_rows } }`), ['INVALID_ARGUMENT', 'GRAPHQL_VALIDATION_FAILED'], what);
  }
  assert.deepEqual(await ts('{t: {_eq: "bad"}}'), []);
});

test('order: asc puts nulls last, desc first, and the explicit variants', async (t) => {
  const server = await start(t);
  const objects = [3, null, 1, null, 2].map((level, k) => ({ line: `line-${k}`, level }));
  ok(await server.gql(`mutation($objects: [log_lines_insert_input!]!) { insert_log_lines(instance_id: "types", objects: $objects) { affected_rows } }`, { objects }));
  const order = async (direction: string) =>
    (await readInstance(server, 'types', `log_lines(order_by: [{level: ${direction}}, {line: asc}]) { line level }`)).log_lines.map((r: { level: number | null }) => r.level);
  assert.deepEqual(await order('asc'), [1, 2, 3, null, null]);
  assert.deepEqual(await order('asc_nulls_last'), [1, 2, 3, null, null]);
  assert.deepEqual(await order('asc_nulls_first'), [null, null, 1, 2, 3]);
  assert.deepEqual(await order('desc'), [null, null, 3, 2, 1]);
  assert.deepEqual(await order('desc_nulls_first'), [null, null, 3, 2, 1]);
  assert.deepEqual(await order('desc_nulls_last'), [3, 2, 1, null, null]);
});

test('nullable columns: cursor paging in every direction, distinct counts and groups', async (t) => {
  const server = await start(t);
  const levels = [2, null, 1, 2, null, 3, 1, null, 2, 3, null];
  const objects = levels.map((level, k) => ({ line: `line-${String(k).padStart(2, '0')}`, level }));
  ok(await server.gql(`mutation($objects: [log_lines_insert_input!]!) { insert_log_lines(instance_id: "types", objects: $objects) { affected_rows } }`, { objects }));
  const rank = (direction: string) => (level: number | null) => {
    const nullsFirst = direction === 'desc' || direction.endsWith('nulls_first');
    if (level === null) return nullsFirst ? -Infinity : Infinity;
    return direction.startsWith('desc') ? -level : level;
  };
  for (const direction of ['asc', 'asc_nulls_first', 'asc_nulls_last', 'desc', 'desc_nulls_first', 'desc_nulls_last']) {
    const seen: Array<{ line: string; level: number | null }> = [];
    let after: string | null = null;
    for (let page = 0; page < 20; page++) {
      const connection: any = (
        await readInstance(server, 'types', `log_lines_connection(first: 2, after: $after, order_by: [{level: ${direction}}]) { edges { node { line level } } pageInfo { hasNextPage endCursor } }`, { after }, '$after: String')
      ).log_lines_connection;
      seen.push(...connection.edges.map((e: { node: { line: string; level: number | null } }) => e.node));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    assert.deepEqual(
      seen.map((r) => r.line).sort(),
      objects.map((o) => o.line),
      `${direction}: every row exactly once across pages, nulls included`,
    );
    const order = rank(direction);
    assert.deepEqual(
      seen.map((r) => r.level),
      [...levels].sort((a, b) => order(a) - order(b)),
      `${direction}: in order, nulls where ${direction} puts them`,
    );
    for (let i = 1; i < seen.length; i++) {
      if (seen[i - 1]!.level === seen[i]!.level) assert.ok(seen[i - 1]!.line < seen[i]!.line, `${direction}: ties in insertion (rowid) order`);
    }
  }

  const agg = await readInstance(
    server,
    'types',
    `log_lines_aggregate { aggregate { count values: count(columns: [level]) distinct: count(columns: [level], distinct: true) sum { level } avg { level } min { level } max { level } } }
     log_lines_groups(grouping_keys: [level], order_by: [{level: asc}]) { group_key { level } group_aggregate { count } }
     nullsFirst: log_lines_groups(grouping_keys: [level], order_by: [{level: desc}]) { group_key { level } }`,
  );
  const present = levels.filter((l): l is number => l !== null);
  assert.deepEqual(agg.log_lines_aggregate.aggregate, {
    count: levels.length,
    values: present.length,
    distinct: new Set(present).size,
    sum: { level: present.reduce((a, b) => a + b, 0) },
    avg: { level: present.reduce((a, b) => a + b, 0) / present.length },
    min: { level: 1 },
    max: { level: 3 },
  });
  assert.deepEqual(agg.log_lines_groups, [
    { group_key: { level: 1 }, group_aggregate: { count: 2 } },
    { group_key: { level: 2 }, group_aggregate: { count: 3 } },
    { group_key: { level: 3 }, group_aggregate: { count: 2 } },
    { group_key: { level: null }, group_aggregate: { count: 4 } },
  ], 'null is a group of its own, last in asc');
  assert.deepEqual(
    agg.nullsFirst.map((g: { group_key: { level: number | null } }) => g.group_key.level),
    [null, 3, 2, 1],
  );
  const filters = await readInstance(
    server,
    'types',
    `none: log_lines(where: {level: {_in: []}}) { line }
     all: log_lines_aggregate(where: {level: {_nin: []}}) { aggregate { count } }
     notTwo: log_lines_aggregate(where: {level: {_neq: 2}}) { aggregate { count } }
     notIn: log_lines_aggregate(where: {level: {_nin: [1, 2]}}) { aggregate { count } }
     isNull: log_lines_aggregate(where: {level: {_is_null: true}}) { aggregate { count } }`,
  );
  assert.deepEqual(filters.none, [], '_in: [] matches nothing');
  // As in SQL (and Hasura on PostgreSQL), comparisons never match null: _neq / _nin leave null rows out.
  assert.equal(filters.notTwo.aggregate.count, present.filter((l) => l !== 2).length);
  assert.equal(filters.notIn.aggregate.count, present.filter((l) => l !== 1 && l !== 2).length);
  assert.equal(filters.isNull.aggregate.count, levels.length - present.length);
  assert.ok([levels.length, present.length].includes(filters.all.aggregate.count), `_nin: [] keeps every row (or every non-null one), got ${filters.all.aggregate.count}`);
});

test('a composite primary key: by_pk, by_pk mutations, conflicts and paging', async (t) => {
  const server = await start(t);
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Instance', 'memberships_by_pk')), { org: 'String!', user_id: 'BigInt!' });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Mutation', 'delete_memberships_by_pk')), { instance_id: 'ID!', org: 'String!', user_id: 'BigInt!' });
  assert.deepEqual(Object.fromEntries(await typeFields(server, 'memberships_pk_columns_input')), { org: 'String!', user_id: 'BigInt!' });
  assert.deepEqual(await enumValues(server, 'memberships_constraint'), ['memberships_pkey']);

  const members = [
    { org: 'acme', user_id: 1, role: 'admin' },
    { org: 'acme', user_id: 2, role: 'member' },
    { org: 'globex', user_id: 1, role: 'owner' },
    { org: 'globex', user_id: '9007199254740993', role: 'bot' },
  ];
  const insert = `mutation($objects: [memberships_insert_input!]!, $onConflict: memberships_on_conflict) { insert_memberships(instance_id: "types", objects: $objects, on_conflict: $onConflict) { affected_rows } }`;
  assert.equal(ok(await server.gql(insert, { objects: members }))['insert_memberships'].affected_rows, 4);

  const read = await readInstance(
    server,
    'types',
    `a: memberships_by_pk(org: "acme", user_id: 2) { org user_id role since }
     b: memberships_by_pk(org: "globex", user_id: "9007199254740993") { user_id role }
     none: memberships_by_pk(org: "globex", user_id: 2) { role }`,
  );
  assert.deepEqual(read, { a: { org: 'acme', user_id: 2, role: 'member', since: null }, b: { user_id: '9007199254740993', role: 'bot' }, none: null });

  assertCode(await server.gql(insert, { objects: [{ org: 'new', user_id: 5, role: 'x' }, { org: 'acme', user_id: 1, role: 'dup' }] }), 'CONSTRAINT_VIOLATION', 'a duplicate composite key');
  assert.equal(ok(await server.gql(insert, { objects: [{ org: 'acme', user_id: 1, role: 'chief' }], onConflict: { constraint: 'memberships_pkey', update_columns: ['role'] } }))['insert_memberships'].affected_rows, 1);

  const updated = ok(
    await server.gql(`mutation { update_memberships_by_pk(instance_id: "types", pk_columns: {org: "acme", user_id: 2}, _set: {role: "lead", since: "2024-01-01T00:00:00.000Z"}) { org user_id role since } }`),
  )['update_memberships_by_pk'];
  assert.deepEqual(updated, { org: 'acme', user_id: 2, role: 'lead', since: '2024-01-01T00:00:00.000Z' });
  const deleted = ok(await server.gql(`mutation { delete_memberships_by_pk(instance_id: "types", org: "globex", user_id: 1) { org user_id role } }`))['delete_memberships_by_pk'];
  assert.deepEqual(deleted, { org: 'globex', user_id: 1, role: 'owner' });
  assert.equal(ok(await server.gql(`mutation { delete_memberships_by_pk(instance_id: "types", org: "globex", user_id: 1) { org } }`))['delete_memberships_by_pk'], null);

  const all = await readInstance(server, 'types', `memberships(order_by: [{org: asc}, {user_id: asc}]) { org user_id role }`);
  assert.deepEqual(all.memberships, [
    { org: 'acme', user_id: 1, role: 'chief' },
    { org: 'acme', user_id: 2, role: 'lead' },
    { org: 'globex', user_id: '9007199254740993', role: 'bot' },
  ]);

  // Paging one row at a time on a column with ties: the composite key breaks them.
  const seen: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < 10; page++) {
    const connection: any = (await readInstance(server, 'types', `memberships_connection(first: 1, after: $after, order_by: [{org: desc}]) { edges { cursor node { org user_id } } pageInfo { hasNextPage endCursor } }`, { after }, '$after: String'))
      .memberships_connection;
    seen.push(...connection.edges.map((e: { node: { org: string; user_id: unknown } }) => `${e.node.org}/${e.node.user_id}`));
    if (!connection.pageInfo.hasNextPage) break;
    after = connection.pageInfo.endCursor;
  }
  assert.deepEqual([...seen].sort(), ['acme/1', 'acme/2', 'globex/9007199254740993']);
  assert.equal(seen[0], 'globex/9007199254740993');
});

test('a table without a primary key is keyed by _rowid', async (t) => {
  const server = await start(t);
  const fields = await typeFields(server, 'log_lines');
  assert.equal(fields.get('_rowid'), 'BigInt!');
  assert.equal(fields.get('line'), 'String!');
  assert.equal(fields.get('level'), 'BigInt');
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Instance', 'log_lines_by_pk')), { _rowid: 'BigInt!' });
  assert.deepEqual(Object.fromEntries(await fieldArgs(server, 'Mutation', 'delete_log_lines_by_pk')), { instance_id: 'ID!', _rowid: 'BigInt!' });

  const objects = ['a', 'b', 'c', 'd', 'e'].map((line, k) => ({ line, level: k % 2 }));
  const inserted = ok(await server.gql(`mutation($objects: [log_lines_insert_input!]!) { insert_log_lines(instance_id: "types", objects: $objects) { affected_rows returning { _rowid line level _instance_id } } }`, { objects }))[
    'insert_log_lines'
  ];
  assert.equal(inserted.affected_rows, 5);
  const rows = [...inserted.returning].sort((x: { line: string }, y: { line: string }) => (x.line < y.line ? -1 : 1));
  for (const row of rows) {
    assert.equal(typeof row._rowid, 'number');
    assert.equal(row._instance_id, 'types');
  }
  assert.equal(new Set(rows.map((r) => r._rowid)).size, 5);

  const c = rows[2]!;
  const byKey = await readInstance(server, 'types', `log_lines_by_pk(_rowid: ${c._rowid}) { _rowid line level }`);
  assert.deepEqual(byKey.log_lines_by_pk, { _rowid: c._rowid, line: 'c', level: 0 });
  const updated = ok(await server.gql(`mutation($r: BigInt!) { update_log_lines_by_pk(instance_id: "types", pk_columns: {_rowid: $r}, _set: {line: "C"}, _inc: {level: 5}) { _rowid line level } }`, { r: c._rowid }))[
    'update_log_lines_by_pk'
  ];
  assert.deepEqual(updated, { _rowid: c._rowid, line: 'C', level: 5 });
  const deleted = ok(await server.gql(`mutation($r: BigInt!) { delete_log_lines_by_pk(instance_id: "types", _rowid: $r) { line } }`, { r: rows[0]._rowid }))['delete_log_lines_by_pk'];
  assert.deepEqual(deleted, { line: 'a' });

  // Paging over a column with ties uses the rowid as the tie-breaker.
  const seen: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < 10; page++) {
    const connection: any = (await readInstance(server, 'types', `log_lines_connection(first: 2, after: $after, order_by: [{level: asc}]) { edges { node { line level } } pageInfo { hasNextPage endCursor } }`, { after }, '$after: String')).log_lines_connection;
    seen.push(...connection.edges.map((e: { node: { line: string } }) => e.node.line));
    if (!connection.pageInfo.hasNextPage) break;
    after = connection.pageInfo.endCursor;
  }
  assert.deepEqual(seen, ['e', 'b', 'd', 'C'], 'ordered by level (0, 1, 1, 5), ties by rowid');
});

test('foreign keys to self, twice to one parent, and without an _id suffix', async (t) => {
  const server = await start(t);
  const categories = await typeFields(server, 'categories');
  assert.equal(categories.get('parent')?.replace('!', ''), 'categories', 'parent_id → parent');
  assert.equal(categories.get('categories_by_parent_id'), '[categories!]!', 'the self FK array relationship is <child>_by_<fk columns>');
  assert.equal(categories.get('moves_by_from_category_id'), '[moves!]!');
  assert.equal(categories.get('moves_by_to_category_id'), '[moves!]!');
  assert.equal(categories.get('order'), '[order!]!', 'array relationship named after the child table');
  const moves = await typeFields(server, 'moves');
  assert.equal(moves.get('from_category')?.replace('!', ''), 'categories');
  assert.equal(moves.get('to_category')?.replace('!', ''), 'categories');
  const order = await typeFields(server, 'order');
  assert.equal(order.get('category'), 'BigInt', 'the column keeps its name');
  assert.equal(order.get('categories'), 'categories', 'an FK column without _id gives a relationship named after the parent table');

  const insert = `mutation($objects: [categories_insert_input!]!) { insert_categories(instance_id: "types", objects: $objects) { returning { id slug } } }`;
  const root = ok(await server.gql(insert, { objects: [{ slug: 'root', name: 'Root' }] }))['insert_categories'].returning[0];
  const kids = ok(
    await server.gql(insert, {
      objects: [
        { slug: 'b', name: 'B', parent_id: root.id },
        { slug: 'a', name: 'A', parent_id: root.id },
      ],
    }),
  )['insert_categories'].returning;
  const a = kids.find((k: { slug: string }) => k.slug === 'a');
  ok(await server.gql(insert, { objects: [{ slug: 'a1', name: 'A1', parent_id: a.id }] }));
  ok(await server.gql(`mutation($from: BigInt!, $to: BigInt!) { insert_moves(instance_id: "types", objects: [{from_category_id: $from, to_category_id: $to, note: "x"}]) { affected_rows } }`, { from: a.id, to: root.id }));

  const tree = await readInstance(
    server,
    'types',
    `categories(order_by: [{slug: asc}]) {
      slug
      parent { slug parent { slug } }
      categories_by_parent_id(order_by: [{slug: asc}]) { slug categories_by_parent_id { slug } }
      moves_by_from_category_id { note to_category { slug } from_category { slug } }
      moves_by_to_category_id { note }
    }`,
  );
  assert.deepEqual(tree.categories, [
    { slug: 'a', parent: { slug: 'root', parent: null }, categories_by_parent_id: [{ slug: 'a1', categories_by_parent_id: [] }], moves_by_from_category_id: [{ note: 'x', to_category: { slug: 'root' }, from_category: { slug: 'a' } }], moves_by_to_category_id: [] },
    { slug: 'a1', parent: { slug: 'a', parent: { slug: 'root' } }, categories_by_parent_id: [], moves_by_from_category_id: [], moves_by_to_category_id: [] },
    { slug: 'b', parent: { slug: 'root', parent: null }, categories_by_parent_id: [], moves_by_from_category_id: [], moves_by_to_category_id: [] },
    {
      slug: 'root',
      parent: null,
      categories_by_parent_id: [
        { slug: 'a', categories_by_parent_id: [{ slug: 'a1' }] },
        { slug: 'b', categories_by_parent_id: [] },
      ],
      moves_by_from_category_id: [],
      moves_by_to_category_id: [{ note: 'x' }],
    },
  ]);
  const slugs = async (where: string) => (await readInstance(server, 'types', `categories(where: ${where}, order_by: [{slug: asc}]) { slug }`)).categories.map((c: { slug: string }) => c.slug);
  assert.deepEqual(await slugs('{parent: {slug: {_eq: "root"}}}'), ['a', 'b']);
  assert.deepEqual(await slugs('{categories_by_parent_id: {slug: {_eq: "a1"}}}'), ['a']);
  assert.deepEqual(await slugs('{categories_by_parent_id: {}}'), ['a', 'root']);
  assert.deepEqual(await slugs('{parent: {parent: {slug: {_eq: "root"}}}}'), ['a1']);
  assert.deepEqual(await slugs('{moves_by_to_category_id: {note: {_eq: "x"}}}'), ['root']);

  assertCode(await server.gql(insert, { objects: [{ slug: 'orphan', name: 'O', parent_id: 999 }] }), 'CONSTRAINT_VIOLATION', 'a parent that does not exist');
});

test('a unique index is an on_conflict constraint', async (t) => {
  const server = await start(t);
  assert.deepEqual((await enumValues(server, 'categories_constraint')).sort(), ['categories_pkey', 'categories_slug_key']);
  const upsert = `mutation($objects: [categories_insert_input!]!, $onConflict: categories_on_conflict) { insert_categories(instance_id: "types", objects: $objects, on_conflict: $onConflict) { affected_rows returning { id slug name } } }`;
  const first = ok(await server.gql(upsert, { objects: [{ slug: 'root', name: 'Root' }] }))['insert_categories'].returning[0];
  assertCode(await server.gql(upsert, { objects: [{ slug: 'root', name: 'Again' }] }), 'CONSTRAINT_VIOLATION', 'a duplicate of a unique index');
  const updated = ok(await server.gql(upsert, { objects: [{ slug: 'root', name: 'Renamed' }], onConflict: { constraint: 'categories_slug_key', update_columns: ['name'] } }))['insert_categories'];
  assert.deepEqual(updated, { affected_rows: 1, returning: [{ id: first.id, slug: 'root', name: 'Renamed' }] });
  const nothing = ok(await server.gql(upsert, { objects: [{ slug: 'root', name: 'Ignored' }], onConflict: { constraint: 'categories_slug_key', update_columns: [] } }))['insert_categories'];
  assert.deepEqual(nothing, { affected_rows: 0, returning: [] });
  const all = await readInstance(server, 'types', `categories { id slug name }`);
  assert.deepEqual(all.categories, [{ id: first.id, slug: 'root', name: 'Renamed' }]);
});

test('SQL keywords as table and column names: "order" with "select", "where", "limit", "group"', async (t) => {
  const server = await start(t);
  const fields = await typeFields(server, 'order');
  for (const [name, type] of [
    ['select', 'String!'],
    ['where', 'String'],
    ['limit', 'BigInt'],
    ['group', 'String'],
  ]) {
    assert.equal(fields.get(name!), type, `order.${name}`);
  }
  const root = ok(await server.gql(`mutation { insert_categories(instance_id: "types", objects: [{slug: "root", name: "Root"}]) { returning { id } } }`))['insert_categories'].returning[0];
  const rows = [
    { select: 's1', where: 'w1', limit: 5, group: 'g1', category: root.id },
    { select: 's2', where: 'w2', limit: 7, group: 'g1' },
    { select: 's3', where: 'w1', limit: 1, group: 'g2' },
  ];
  const inserted = ok(await server.gql(`mutation($objects: [order_insert_input!]!) { insert_order(instance_id: "types", objects: $objects) { affected_rows returning { id select where limit group } } }`, { objects: rows }))['insert_order'];
  assert.equal(inserted.affected_rows, 3);
  const s1 = inserted.returning.find((r: { select: string }) => r.select === 's1');

  const read = await readInstance(
    server,
    'types',
    `order(where: {where: {_eq: "w1"}}, order_by: [{limit: desc}]) { select where limit group categories { slug } }
     order_by_pk(id: ${s1.id}) { select }
     order_aggregate(where: {group: {_eq: "g1"}}) { aggregate { count sum { limit } max { select } } }
     order_groups(grouping_keys: [group], order_by: [{group: asc}]) { group_key { group } group_aggregate { count max { limit } } }
     order_connection(first: 2, order_by: [{select: desc}]) { edges { node { select } } pageInfo { hasNextPage } }`,
  );
  assert.deepEqual(read.order, [
    { select: 's1', where: 'w1', limit: 5, group: 'g1', categories: { slug: 'root' } },
    { select: 's3', where: 'w1', limit: 1, group: 'g2', categories: null },
  ]);
  assert.deepEqual(read.order_by_pk, { select: 's1' });
  assert.deepEqual(read.order_aggregate.aggregate, { count: 2, sum: { limit: 12 }, max: { select: 's2' } });
  assert.deepEqual(read.order_groups, [
    { group_key: { group: 'g1' }, group_aggregate: { count: 2, max: { limit: 7 } } },
    { group_key: { group: 'g2' }, group_aggregate: { count: 1, max: { limit: 1 } } },
  ]);
  assert.deepEqual(read.order_connection, { edges: [{ node: { select: 's3' } }, { node: { select: 's2' } }], pageInfo: { hasNextPage: true } });
  const viaParent = await readInstance(server, 'types', `categories { slug order { select } }`);
  assert.deepEqual(viaParent.categories, [{ slug: 'root', order: [{ select: 's1' }] }]);

  const updated = ok(await server.gql(`mutation { update_order(instance_id: "types", where: {select: {_eq: "s1"}}, _set: {where: "updated", group: "g9"}, _inc: {limit: 1}) { affected_rows returning { select where limit group } } }`))[
    'update_order'
  ];
  assert.deepEqual(updated, { affected_rows: 1, returning: [{ select: 's1', where: 'updated', limit: 6, group: 'g9' }] });
  const deleted = ok(await server.gql(`mutation { delete_order(instance_id: "types", where: {group: {_eq: "g2"}}) { affected_rows } }`))['delete_order'];
  assert.equal(deleted.affected_rows, 1);
  const byPk = ok(await server.gql(`mutation { delete_order_by_pk(instance_id: "types", id: ${s1.id}) { select } }`))['delete_order_by_pk'];
  assert.deepEqual(byPk, { select: 's1' });
  const left = await readInstance(server, 'types', `order { select }`);
  assert.deepEqual(left.order, [{ select: 's2' }]);
  assertCode(await queryInstance(server, 'types', `order(where: {select: {_eq: null}}) { id }`), 'INVALID_ARGUMENT');
});
