import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertNoInternals, createInstances, ok, queryInstance, readInstance } from '../helpers/data-api.js';
import { startServer, type GraphQLResponse, type InProcessServer } from '../helpers/servers.js';

// Values are always bound: hostile strings, LIKE metacharacters, NUL bytes, huge numbers, huge lists
// and deep nesting give the right rows or a clear error code, never a 500, never a crash, never a
// change to the data; the server keeps answering afterwards.

const names = [
  `'; DROP TABLE machines; --`,
  `Robert'); DELETE FROM machines WHERE ('1'='1`,
  `"double" and 'single' quotes`,
  `" OR 1=1 --`,
  'back\\slash',
  '100%',
  '100x',
  '100\\%',
  'a_b',
  'axb',
  'a*b',
  'axxb',
  'a?b',
  '[abc]',
  'a',
  'b',
  'ABC',
  'abc',
  'ÄÖÜ',
  'äöü',
  '😀 emoji',
  '中文',
  '   padded   ',
  '',
  'line\nbreak\ttab',
  '%',
  '_',
  '\\',
  'x'.repeat(10_000),
];

const pad = (n: number) => String(n).padStart(2, '0');
const machines = names.map((name, i) => ({
  id: `h${pad(i)}`,
  name,
  state: 'started',
  region: i % 2 === 0 ? 'fra' : `'); DROP TABLE machine_events; --`,
  cpu_kind: 'shared',
  cpus: 1 + (i % 4),
  memory_mb: 256,
  image: `img'"\\%_${i}`,
  created_at: '2024-01-01T00:00:00.000Z',
  updated_at: '2024-01-01T00:00:00.000Z',
}));
const events = machines.slice(0, 6).map((m, k) => ({ machine_id: m.id, type: k % 2 === 0 ? 'start' : `'; DROP TABLE machines; --`, status: 'ok', at: `2024-01-0${k + 1}T00:00:00.000Z` }));

const snapshotQuery = `machines(limit: 1000, order_by: [{id: asc}]) { id name state region cpu_kind cpus memory_mb image created_at updated_at }
  machine_events(limit: 1000, order_by: [{id: asc}]) { id machine_id type status at }`;

async function seeded(t: { after(fn: () => unknown): void }): Promise<{ server: InProcessServer; snapshot: () => Promise<unknown> }> {
  const server = await startServer(t);
  await createInstances(server, 'h');
  ok(await server.gql(`mutation($o: [machines_insert_input!]!) { insert_machines(instance_id: "h", objects: $o) { affected_rows } }`, { o: machines }));
  ok(await server.gql(`mutation($o: [machine_events_insert_input!]!) { insert_machine_events(instance_id: "h", objects: $o) { affected_rows } }`, { o: events }));
  const snapshot = () => readInstance(server, 'h', snapshotQuery);
  const first = (await snapshot()) as { machines: unknown[] };
  assert.deepEqual(
    first.machines,
    machines,
    'hostile strings are stored exactly',
  );
  return { server, snapshot };
}

/** Every hostile request ends in data or in a clear, coded error: never HTTP 5xx, never INTERNAL_SERVER_ERROR, never internals. */
function outcome(result: GraphQLResponse, what: string, options: { requestErrorOk?: boolean } = {}): 'data' | string {
  assert.ok(result.status < 500, `${what}: HTTP ${result.status}`);
  if (!result.errors || result.errors.length === 0) return 'data';
  for (const error of result.errors) {
    assertNoInternals(error.message, what);
    assert.notEqual(error.extensions?.['code'], 'INTERNAL_SERVER_ERROR', `${what}: ${JSON.stringify(result.errors)}`);
  }
  const code = result.errors[0]!.extensions?.['code'];
  if (code === undefined && options.requestErrorOk && result.status === 400) return 'REQUEST_ERROR';
  assert.equal(typeof code, 'string', `${what}: a code, got ${JSON.stringify(result.errors)}`);
  return code as string;
}

/** Either the expected rows, or one of the given codes. */
function rowsOrCode(result: GraphQLResponse, what: string, pick: (data: any) => unknown, expected: unknown, codes: readonly string[] = ['INVALID_ARGUMENT', 'QUERY_TOO_COSTLY'], options: { requestErrorOk?: boolean } = {}): string {
  const got = outcome(result, what, options);
  if (got === 'data') assert.deepEqual(pick(result.data), expected, what);
  else assert.ok([...codes, ...(options.requestErrorOk ? ['REQUEST_ERROR'] : [])].includes(got), `${what}: expected rows or ${codes.join('/')}, got ${got}: ${JSON.stringify(result.errors)}`);
  return got;
}

const idsOf = (data: any) => (data.instance.machines as Array<{ id: string }>).map((m) => m.id).sort();
const idsWhere = (predicate: (m: (typeof machines)[number]) => boolean) =>
  machines
    .filter(predicate)
    .map((m) => m.id)
    .sort();

/**
 * PostgreSQL LIKE, as the spec defines it: % any run, _ one character, backslash escapes; ilike folds
 * ASCII case only. Dynamic programming over code points (a regular expression would backtrack for ever
 * on the many-% pattern below).
 */
function likeMatches(pattern: string, value: string, ignoreCase: boolean): boolean {
  const fold = (s: string) => (ignoreCase ? s.replace(/[A-Z]/g, (c) => c.toLowerCase()) : s);
  const source = [...fold(pattern)];
  const tokens: Array<{ kind: 'any' | 'one' } | { kind: 'literal'; char: string }> = [];
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (char === '\\' && i + 1 < source.length) tokens.push({ kind: 'literal', char: source[++i]! });
    else if (char === '%') tokens.push({ kind: 'any' });
    else if (char === '_') tokens.push({ kind: 'one' });
    else tokens.push({ kind: 'literal', char });
  }
  const text = [...fold(value)];
  // matched[j]: the tokens so far match the first j characters.
  let matched = Array.from({ length: text.length + 1 }, (_, j) => j === 0);
  for (const token of tokens) {
    const next = new Array<boolean>(text.length + 1).fill(false);
    for (let j = 0; j <= text.length; j++) {
      if (token.kind === 'any') next[j] = matched[j]! || (j > 0 && next[j - 1]!);
      else if (j > 0 && matched[j - 1]) next[j] = token.kind === 'one' || (token.kind === 'literal' && text[j - 1] === token.char);
    }
    matched = next;
  }
  return matched[text.length]!;
}

test('hostile strings compare exactly, and LIKE metacharacters mean what the spec says', async (t) => {
  const { server, snapshot } = await seeded(t);
  const before = await snapshot();

  // _eq / _neq on every hostile name, bound as variables, all in one request.
  const varDefs = names.map((_, i) => `$n${i}: String`).join(', ');
  const eqSelection = names.map((_, i) => `eq${i}: machines(where: {name: {_eq: $n${i}}}) { id } neq${i}: machines(where: {name: {_neq: $n${i}}}) { id }`).join('\n');
  const eq = await readInstance(server, 'h', eqSelection, Object.fromEntries(names.map((name, i) => [`n${i}`, name])), varDefs);
  names.forEach((name, i) => {
    assert.deepEqual(eq[`eq${i}`], [{ id: `h${pad(i)}` }], `_eq ${JSON.stringify(name.slice(0, 40))}`);
    assert.equal(eq[`neq${i}`].length, names.length - 1, `_neq ${JSON.stringify(name.slice(0, 40))}`);
  });
  // The same through literals in the query text (escaped for GraphQL).
  for (const name of names.slice(0, 5)) {
    const result = await queryInstance(server, 'h', `machines(where: {name: {_eq: ${JSON.stringify(name)}}}) { id }`);
    assert.deepEqual(idsOf(ok(result)), idsWhere((m) => m.name === name), `literal _eq ${name}`);
  }

  const patterns = [
    '%',
    '_',
    '',
    '100\\%',
    '100%',
    '100\\\\%',
    'a\\_b',
    'a_b',
    'a*b',
    'a?b',
    '[abc]',
    'a[bc]',
    '%\\\\%',
    "%'%",
    '%"%',
    '%;%',
    'abc',
    'ABC',
    '%ä%',
    '%Ä%',
    '_____',
    '\\%',
    '\\_',
    '%\\%%',
    '😀%',
    '_ emoji',
    '%--%',
    '%\n%',
    'x%x',
    '%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%y',
  ];
  const patternDefs = patterns.map((_, i) => `$p${i}: String`).join(', ');
  const patternVars = Object.fromEntries(patterns.map((p, i) => [`p${i}`, p]));
  for (const op of ['_like', '_nlike', '_ilike', '_nilike'] as const) {
    const selection = patterns.map((_, i) => `p${i}: machines(where: {name: {${op}: $p${i}}}) { id }`).join('\n');
    const result = await readInstance(server, 'h', selection, patternVars, patternDefs);
    patterns.forEach((pattern, i) => {
      const ignoreCase = op === '_ilike' || op === '_nilike';
      const negate = op === '_nlike' || op === '_nilike';
      const expected = idsWhere((m) => likeMatches(pattern, m.name, ignoreCase) !== negate);
      assert.deepEqual(
        result[`p${i}`].map((r: { id: string }) => r.id).sort(),
        expected,
        `${op} ${JSON.stringify(pattern)} matches ${expected.map((id) => JSON.stringify(names[Number(id.slice(1))]!.slice(0, 20))).join(', ')}`,
      );
    });
  }

  // Hostile text in other columns and in relationship filters.
  const other = await readInstance(
    server,
    'h',
    `region: machines(where: {region: {_eq: "'); DROP TABLE machine_events; --"}}) { id }
     image: machines(where: {image: {_like: "img'\\"\\\\\\\\\\\\%\\\\_1"}}) { id }
     events: machines(where: {machine_events: {type: {_eq: "'; DROP TABLE machines; --"}}}) { id }
     big: machines(where: {name: {_eq: $big}}) { id }`,
    { big: 'y'.repeat(1_000_000) },
    '$big: String',
  );
  assert.deepEqual(other.region.map((r: { id: string }) => r.id).sort(), idsWhere((m) => m.region.startsWith(`'`)));
  assert.deepEqual(other.image, [{ id: 'h01' }], 'the image of h01 is literally img\'"\\%_1');
  assert.deepEqual(other.events.map((r: { id: string }) => r.id).sort(), ['h01', 'h03', 'h05']);
  assert.deepEqual(other.big, []);

  assert.deepEqual(await snapshot(), before, 'the data is unchanged');
});

test('NUL bytes and broken unicode are bound or refused, never truncated into a wrong match', async (t) => {
  const { server, snapshot } = await seeded(t);
  const before = await snapshot();
  for (const value of ['a\u0000b', '\u0000', `'\u0000; DROP TABLE machines; --`, 'x\ud800y']) {
    const result = await queryInstance(server, 'h', `eq: machines(where: {name: {_eq: $v}}) { id } like: machines(where: {name: {_like: $v}}) { id } ilike: machines(where: {name: {_ilike: $v}}) { id }`, { v: value }, '$v: String');
    const got = outcome(result, `filter ${JSON.stringify(value)}`);
    if (got === 'data') {
      const data = result.data!['instance'];
      assert.deepEqual(data, { eq: [], like: [], ilike: [] }, `${JSON.stringify(value)} matches no row (not "a", not "")`);
    } else assert.equal(got, 'INVALID_ARGUMENT');
  }

  // Writing a NUL byte: either stored exactly (and found exactly), or refused with nothing written.
  await createInstances(server, 'nul');
  const value = 'before\u0000after';
  const insert = await server.gql(
    `mutation($o: [machines_insert_input!]!) { insert_machines(instance_id: "nul", objects: $o) { affected_rows returning { name } } }`,
    { o: [{ ...machines[0], id: 'n1', name: value }] },
  );
  const got = outcome(insert, 'insert a NUL byte');
  const stored = await readInstance(server, 'nul', `machines { name } prefix: machines(where: {name: {_eq: "before"}}) { name }`);
  if (got === 'data') {
    assert.deepEqual(insert.data!['insert_machines'].returning, [{ name: value }]);
    assert.deepEqual(stored, { machines: [{ name: value }], prefix: [] }, 'stored exactly, not cut at the NUL');
    const found = await readInstance(server, 'nul', `machines(where: {name: {_eq: $v}}) { name }`, { v: value }, '$v: String');
    assert.deepEqual(found.machines, [{ name: value }]);
  } else {
    assert.equal(got, 'INVALID_ARGUMENT');
    assert.deepEqual(stored, { machines: [], prefix: [] }, 'nothing written');
  }
  assert.deepEqual(await snapshot(), before);
});

test('huge numbers: exact or refused with a code, and 64-bit overflow never writes a rounded value', async (t) => {
  const { server, snapshot } = await seeded(t);
  const before = await snapshot();
  const all = machines.map((m) => m.id).sort();
  const byCpus = (predicate: (cpus: number) => boolean) => idsWhere((m) => predicate(m.cpus));

  const failures: string[] = [];
  for (const [where, expected] of [
    ['{cpus: {_eq: 9223372036854775807}}', []],
    ['{cpus: {_lt: 9223372036854775807}}', all],
    ['{cpus: {_gt: -9223372036854775808}}', all],
    ['{cpus: {_gt: "-9223372036854775808", _lt: "9223372036854775807"}}', all],
    ['{cpus: {_eq: 9007199254740993}}', []],
    ['{cpus: {_in: ["2", 4, "9223372036854775807"]}}', byCpus((c) => c === 2 || c === 4)],
    ['{cpus: {_nin: [1, "-9223372036854775808"]}}', byCpus((c) => c !== 1)],
  ] as const) {
    await softly(failures, where, async () => {
      const result = await queryInstance(server, 'h', `machines(where: ${where}) { id }`);
      assert.deepEqual(idsOf(ok(result, where)), expected, where);
    });
  }
  for (const literal of ['"99999999999999999999"', '9223372036854775808', '-9223372036854775809', '1.5', '"1e3"', '"0x10"', '" 1"', '""', '"abc"', 'true', '1e400']) {
    await softly(failures, `literal ${literal}`, async () => {
      const result = await queryInstance(server, 'h', `machines(where: {cpus: {_eq: ${literal}}}) { id }`);
      const got = outcome(result, `cpus _eq ${literal}`);
      assert.ok(['INVALID_ARGUMENT', 'GRAPHQL_VALIDATION_FAILED'].includes(got), `cpus _eq ${literal}: refused, got ${got}`);
    });
  }
  for (const value of ['99999999999999999999', 1e300, -1e300, 2 ** 64, 1.5, 'NaN', '1e3']) {
    await softly(failures, `variable ${value}`, async () => {
      const result = await queryInstance(server, 'h', `machines(where: {cpus: {_eq: $v}}) { id }`, { v: value }, '$v: BigInt');
      const got = outcome(result, `cpus _eq $v = ${value}`, { requestErrorOk: true });
      assert.notEqual(got, 'data', `cpus _eq ${value} is refused`);
    });
  }
  for (const [limit, what] of [
    ['limit: 2147483647', 'the largest Int as limit'],
    ['limit: -5', 'a negative limit'],
    ['offset: -5', 'a negative offset'],
  ] as const) {
    await softly(failures, what, async () => assert.equal(outcome(await queryInstance(server, 'h', `machines(${limit}) { id }`), what), 'INVALID_ARGUMENT', what));
  }
  await softly(failures, 'a huge offset', async () => rowsOrCode(await queryInstance(server, 'h', `machines(offset: 2147483647) { id }`), 'a huge offset', (d) => d.instance.machines, []));
  for (const first of ['first: -1', 'first: 2147483647']) {
    await softly(failures, first, async () => {
      const got = outcome(await queryInstance(server, 'h', `machines_connection(${first}) { edges { cursor } }`), first);
      assert.ok(['data', 'INVALID_ARGUMENT', 'QUERY_TOO_COSTLY'].includes(got), `${first}: ${got}`);
    });
  }

  // 64-bit overflow in an _inc: no rounded REAL may be written into an INTEGER column.
  await softly(failures, '_inc past 2^63', async () => {
    const overflow = await server.gql(`mutation { update_machines(instance_id: "h", where: {id: {_eq: "h00"}}, _inc: {memory_mb: "9223372036854775807"}) { affected_rows returning { memory_mb } } }`);
    const incResult = outcome(overflow, '_inc past 2^63');
    assert.ok(['INVALID_ARGUMENT', 'CONSTRAINT_VIOLATION'].includes(incResult), `_inc past 2^63 is refused, got ${incResult}: ${JSON.stringify(overflow.data)}`);
  });
  await softly(failures, '_inc past 2^63 on cpus', async () => {
    const cpusOverflow = await server.gql(`mutation { update_machines(instance_id: "h", where: {id: {_eq: "h01"}}, _inc: {cpus: "9223372036854775807"}) { affected_rows } }`);
    assert.notEqual(outcome(cpusOverflow, '_inc past 2^63 on cpus'), 'data');
  });
  await softly(failures, 'nothing written', async () => assert.deepEqual(await snapshot(), before, 'nothing was written'));

  // A sum that overflows 64 bits: exact or a coded error; count/min/max beside it are unaffected.
  await createInstances(server, 'big');
  const big = (id: string, memory_mb: string) => ({ ...machines[0], id, memory_mb });
  ok(await server.gql(`mutation($o: [machines_insert_input!]!) { insert_machines(instance_id: "big", objects: $o) { affected_rows } }`, { o: [big('b1', '9223372036854775807'), big('b2', '9223372036854775807')] }));
  await softly(failures, 'aggregates beside an overflowing sum', async () => {
    const counted = await readInstance(server, 'big', `machines_aggregate { aggregate { count max { memory_mb } min { memory_mb } avg { memory_mb } } }`);
    assert.deepEqual(counted.machines_aggregate.aggregate, { count: 2, max: { memory_mb: '9223372036854775807' }, min: { memory_mb: '9223372036854775807' }, avg: { memory_mb: 9223372036854775807 } });
  });
  await softly(failures, 'a sum past 2^63', async () => {
    const summed = await queryInstance(server, 'big', `machines_aggregate { aggregate { sum { memory_mb } } }`);
    rowsOrCode(summed, 'a sum past 2^63', (d) => d.instance.machines_aggregate.aggregate.sum.memory_mb, '18446744073709551614', ['INVALID_ARGUMENT', 'QUERY_TOO_COSTLY', 'NUMERIC_OVERFLOW', 'VALUE_OUT_OF_RANGE']);
  });
  await softly(failures, 'groups beside an overflowing sum', async () => {
    const grouped = await queryInstance(server, 'big', `machines_groups(grouping_keys: [region]) { group_aggregate { count } }`);
    assert.deepEqual(ok(grouped, 'groups beside an overflowing sum')['instance'].machines_groups, [{ group_aggregate: { count: 2 } }]);
  });
  assert.deepEqual(failures, [], 'every huge number is exact or refused with a code');
});

/** Runs every check and reports all failures together, so one bug does not hide the next. */
async function softly(failures: string[], what: string, check: () => unknown): Promise<void> {
  try {
    await check();
  } catch (error) {
    failures.push(`${what}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  }
}

function nest(depth: number, leaf: Record<string, unknown>, wrap: (inner: Record<string, unknown>, level: number) => Record<string, unknown>): Record<string, unknown> {
  let exp = leaf;
  for (let level = 0; level < depth; level++) exp = wrap(exp, level);
  return exp;
}

test('a 50,000-element _in and 100-deep nesting give the right rows or QUERY_TOO_COSTLY', async (t) => {
  const { server, snapshot } = await seeded(t);
  const before = await snapshot();
  const many = Array.from({ length: 50_000 }, (_, i) => `zz-${i}`);
  many[1234] = 'h01';
  many[49_999] = 'h07';
  const manyNumbers = Array.from({ length: 50_000 }, (_, i) => 1000 + i);
  manyNumbers[17] = 3;
  const failures: string[] = [];
  await softly(failures, '50,000-element _in', async () => {
    const bigIn = await queryInstance(
      server,
      'h',
      `machines(where: {id: {_in: $ids}}, order_by: [{id: asc}]) { id }
       nin: machines_aggregate(where: {id: {_nin: $ids}}) { aggregate { count } }
       byCpus: machines_aggregate(where: {cpus: {_in: $cpus}}) { aggregate { count } }`,
      { ids: many, cpus: manyNumbers },
      '$ids: [String!], $cpus: [BigInt!]',
    );
    rowsOrCode(
      bigIn,
      '50,000-element _in',
      (d) => [d.instance.machines.map((m: { id: string }) => m.id), d.instance.nin.aggregate.count, d.instance.byCpus.aggregate.count],
      [['h01', 'h07'], machines.length - 2, machines.filter((m) => m.cpus === 3).length],
    );
  });

  const leaf = { name: { _eq: 'a_b' } };
  const expected = ['h08'];
  const shapes: Array<[string, Record<string, unknown>]> = [
    ['100-deep _and', nest(100, leaf, (inner) => ({ _and: [inner] }))],
    ['100-deep _or', nest(100, leaf, (inner) => ({ _or: [inner, { id: { _eq: 'nope' } }] }))],
    ['100-deep _or of one', nest(100, leaf, (inner) => ({ _or: [inner] }))],
    ['100-deep _not (even)', nest(100, leaf, (inner) => ({ _not: inner }))],
    ['100-deep mixed', nest(100, leaf, (inner, level) => (level % 3 === 0 ? { _and: [inner, { cpus: { _gte: 1 } }] } : level % 3 === 1 ? { _or: [inner] } : { _not: { _not: inner } }))],
    // Far beyond the listed depth: still no 500 and no crash.
    ['1000-deep _and', nest(1000, leaf, (inner) => ({ _and: [inner] }))],
    ['2000-deep _and', nest(2000, leaf, (inner) => ({ _and: [inner] }))],
  ];
  for (const [what, where] of shapes) {
    await softly(failures, what, async () => {
      const result = await queryInstance(server, 'h', `machines(where: $w) { id }`, { w: where }, '$w: machines_bool_exp');
      rowsOrCode(result, what, idsOf, expected);
    });
  }
  // The same depth written into the query text.
  await softly(failures, '100-deep _and literal', async () => {
    const literal = `${'{_and: ['.repeat(100)}{name: {_eq: "a_b"}}${']}'.repeat(100)}`;
    rowsOrCode(await queryInstance(server, 'h', `machines(where: ${literal}) { id }`), '100-deep _and literal', idsOf, expected);
  });

  // Relationship filters 20 levels deep: machine → events → machine → … → an event of type start.
  await softly(failures, '20-deep relationship filter', async () => {
    let relationship: Record<string, unknown> = { type: { _eq: 'start' } };
    for (let level = 0; level < 10; level++) relationship = { machine: { machine_events: relationship } };
    const deepRelationship = await queryInstance(server, 'h', `machines(where: {machine_events: $w}) { id }`, { w: relationship }, '$w: machine_events_bool_exp');
    rowsOrCode(deepRelationship, '20-deep relationship filter', idsOf, ['h00', 'h02', 'h04']);
  });
  assert.deepEqual(failures, [], 'every shape gives the right rows or a clear code');
  assert.deepEqual(await snapshot(), before, 'the data is unchanged');
});

test('tampered cursors, odd grouping keys and hostile values in mutations are refused or bound', async (t) => {
  const { server, snapshot } = await seeded(t);
  const before = await snapshot();
  const real = await readInstance(server, 'h', `machines_connection(first: 2, order_by: [{name: asc}]) { pageInfo { endCursor } }`);
  const cursor: string = real.machines_connection.pageInfo.endCursor;
  const tampered = [
    '',
    'x',
    'AAAA',
    cursor.slice(0, -2),
    `${cursor}AAAA`,
    cursor.split('').reverse().join(''),
    Buffer.from(`["'; DROP TABLE machines; --", 1]`).toString('base64'),
    Buffer.from('{"values":[{"$ne":null}],"pk":["h01"]}').toString('base64'),
    Buffer.from(JSON.stringify([1, 2, 3, 4, 5, 6, 7, 8])).toString('base64'),
    'x'.repeat(100_000),
  ];
  for (const after of tampered) {
    const result = await queryInstance(server, 'h', `machines_connection(first: 2, after: $after, order_by: [{name: asc}]) { edges { node { id } } }`, { after }, '$after: String');
    const got = outcome(result, `after ${JSON.stringify(after.slice(0, 40))}`);
    assert.ok(['data', 'INVALID_ARGUMENT'].includes(got), `tampered cursor: ${got}`);
  }
  // A cursor from one ordering used with another.
  const otherOrder = await queryInstance(server, 'h', `machines_connection(first: 2, after: $after, order_by: [{cpus: desc}]) { edges { node { id } } }`, { after: cursor }, '$after: String');
  assert.ok(['data', 'INVALID_ARGUMENT'].includes(outcome(otherOrder, 'cursor of another order')));

  const noKeys = await queryInstance(server, 'h', `machines_groups(grouping_keys: []) { group_aggregate { count } }`);
  assert.ok(['data', 'INVALID_ARGUMENT'].includes(outcome(noKeys, 'no grouping keys')));
  const groupedByHostile = await readInstance(server, 'h', `machines_groups(grouping_keys: [name], limit: 1000) { group_key { name } group_aggregate { count } }`);
  assert.deepEqual(
    groupedByHostile.machines_groups.map((g: { group_key: { name: string } }) => g.group_key.name).sort(),
    [...names].sort(),
    'hostile values come back exactly as group keys',
  );

  // Mutations with hostile where/_set values write exactly what they say.
  await createInstances(server, 'w');
  ok(await server.gql(`mutation($o: [machines_insert_input!]!) { insert_machines(instance_id: "w", objects: $o) { affected_rows } }`, { o: machines.slice(0, 4) }));
  const updated = ok(
    await server.gql(`mutation($n: String!, $v: String!) { update_machines(instance_id: "w", where: {name: {_eq: $n}}, _set: {image: $v}) { affected_rows returning { id image } } }`, {
      n: names[0],
      v: `x'); DELETE FROM machines; --`,
    }),
  )['update_machines'];
  assert.deepEqual(updated, { affected_rows: 1, returning: [{ id: 'h00', image: `x'); DELETE FROM machines; --` }] });
  const deleted = ok(await server.gql(`mutation($n: String!) { delete_machines(instance_id: "w", where: {name: {_like: $n}}) { affected_rows } }`, { n: `%' OR '1'='1` }))['delete_machines'];
  assert.equal(deleted.affected_rows, 0, 'a LIKE pattern full of quotes deletes only what it matches: nothing');
  const left = await readInstance(server, 'w', `machines_aggregate { aggregate { count } }`);
  assert.equal(left.machines_aggregate.aggregate.count, 4);

  assert.deepEqual(await snapshot(), before, 'the data of "h" is unchanged');
});

test('after all of it the server still answers', async (t) => {
  const { server, snapshot } = await seeded(t);
  const before = await snapshot();
  // A burst of hostile requests at once.
  const burst = await Promise.all([
    queryInstance(server, 'h', `machines(where: $w) { id }`, { w: nest(100, { name: { _eq: 'a' } }, (inner) => ({ _or: [inner, { id: { _eq: 'x' } }] })) }, '$w: machines_bool_exp'),
    queryInstance(server, 'h', `machines(where: $w) { id }`, { w: nest(2000, { name: { _eq: 'a' } }, (inner) => ({ _and: [inner] })) }, '$w: machines_bool_exp'),
    queryInstance(server, 'h', `machines(where: {id: {_in: $ids}}) { id }`, { ids: Array.from({ length: 50_000 }, (_, i) => `q${i}`) }, '$ids: [String!]'),
    queryInstance(server, 'h', `machines(where: {name: {_like: $p}}) { id }`, { p: '%'.repeat(10_000) }, '$p: String'),
    queryInstance(server, 'h', `machines(where: {name: {_eq: $p}}) { id }`, { p: '\u0000'.repeat(1000) }, '$p: String'),
    queryInstance(server, 'h', `machines(limit: 5000) { id }`),
    server.gql(`mutation { insert_machines(instance_id: "h", objects: [{id: "h00"}]) { affected_rows } }`),
  ]);
  const health = await fetch(`${server.origin}/healthz`);
  assert.equal(health.status, 200);
  const still = await readInstance(server, 'h', `machines_aggregate { aggregate { count } } machines_by_pk(id: "h08") { name }`);
  assert.deepEqual(still, { machines_aggregate: { aggregate: { count: machines.length } }, machines_by_pk: { name: 'a_b' } });
  ok(await server.gql(`mutation { create_instance(id: "after") { id } }`));
  assert.deepEqual(await snapshot(), before, 'the data is unchanged');
  // Only now judge the answers to the burst, so a bad answer does not hide whether the server survived.
  const failures: string[] = [];
  for (const [i, result] of burst.entries()) await softly(failures, `burst ${i}`, () => outcome(result, `burst ${i}`, { requestErrorOk: true }));
  assert.deepEqual(failures, [], 'each hostile request of the burst got data or a clear code');
});
