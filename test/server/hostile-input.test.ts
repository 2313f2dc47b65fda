/**
 * The hostile-input campaign, against a real server in production mode, as an admin (the most
 * powerful principal: what it cannot break, nobody can): malformed JSON, wrong content types,
 * huge documents, deep nesting, alias bombs, field duplication, huge variables, invalid UTF-8,
 * path-traversal ids and SQL metacharacters in every string argument of every root field and in
 * every text filter. Each answers a 4xx or a GraphQL error (a read may also answer no rows); no
 * answer leaks internals; the server stays up; and every instance's data, compared before and
 * after, is unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getNamedType, isObjectType, isScalarType, type GraphQLField } from 'graphql';
import { loadMigrations } from '../../src/migrations/index.js';
import { schemaForMigrations } from '../../src/schema/index.js';
import { apiKeys, bearer, fleetSnapshot, seedTenants } from '../helpers/auth.js';
import { assertNoInternals } from '../helpers/data-api.js';
import { demoMigrations, startServer, type InProcessServer } from '../helpers/servers.js';

interface Answer {
  status: number;
  body: { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> } | undefined;
}

const sqlPayloads = [
  `' OR '1'='1`,
  `'; DROP TABLE machines; --`,
  `" OR ""="`,
  `acme-a' --`,
  `)) UNION SELECT name, sql FROM sqlite_master --`,
  `%' OR 1=1 --`,
  `\\'; ATTACH DATABASE '/tmp/x.db' AS x; --`,
  `_%\\`,
  `\u0000' OR 1=1`,
];
const traversalIds = ['../../etc/passwd', '..%2f..%2fcatalog', 'acme-a/../globex-a', '/etc/passwd', 'acme-a\u0000', 'ACME-A', '.', '..', 'a'.repeat(64), 'acme-a\\..\\globex-a', ''];

describe('hostile input campaign', () => {
  let server: InProcessServer;
  let before_: unknown;
  const cleanups: Array<() => unknown> = [];
  const answers: Array<{ what: string; answer: Answer }> = [];

  async function send(what: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...bearer('admin'), ...headers }, body });
    const text = await response.text();
    let parsed: Answer['body'];
    try {
      parsed = JSON.parse(text) as Answer['body'];
    } catch {
      parsed = undefined;
    }
    const answer = { status: response.status, body: parsed };
    answers.push({ what, answer });
    return answer;
  }
  const gql = (what: string, query: string, variables?: unknown) => send(what, JSON.stringify({ query, variables }));
  /** Variables given as raw JSON text (too deep for JSON.stringify to write). */
  const gqlRaw = (what: string, query: string, variablesJson: string) => send(what, `{"query": ${JSON.stringify(query)}, "variables": ${variablesJson}}`);

  /** A 4xx, or a GraphQL error with a code, and never internals. */
  function refused(what: string, answer: Answer, codes?: readonly string[]): void {
    assert.ok(answer.status < 500, `${what}: HTTP ${answer.status}`);
    const errors = answer.body?.errors ?? [];
    assert.ok(answer.status >= 400 || errors.length > 0, `${what}: neither a 4xx nor a GraphQL error (${answer.status} ${JSON.stringify(answer.body).slice(0, 300)})`);
    for (const error of errors) assert.equal(typeof error.extensions?.code, 'string', `${what}: error without a code: ${error.message}`);
    if (codes !== undefined) assert.ok(errors.some((e) => codes.includes(e.extensions?.code ?? '')) , `${what}: expected ${codes.join('|')}, got ${answer.status} ${JSON.stringify(errors).slice(0, 300)}`);
  }

  before(async () => {
    server = await startServer({ after: (fn) => void cleanups.push(fn) }, { mode: 'production', apiKeys, rateLimitPerSecond: 0 });
    await seedTenants(server.url);
    before_ = await fleetSnapshot(server.url);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('malformed JSON, wrong shapes and wrong content types answer 4xx', async () => {
    const bodies: Record<string, string> = {
      'truncated JSON': '{"query": "{ instances { id }"',
      'not JSON': 'query { instances { id } }',
      'query is a number': '{"query": 42}',
      'a bare string': '"{ instances { id } }"',
      null: 'null',
      'an empty batch': '[]',
      'variables not an object': '{"query": "{ __typename }", "variables": [1, 2]}',
      'empty body': '',
      'a lone surrogate escape': '{"query": "{ instance(id: \\"\\ud800\\") { id } }"}',
    };
    for (const [what, body] of Object.entries(bodies)) refused(what, await send(what, body));
    const types: Record<string, string> = {
      'text/plain': 'text/plain',
      'application/x-www-form-urlencoded': 'application/x-www-form-urlencoded',
      'multipart/form-data': 'multipart/form-data; boundary=x',
      'application/xml': 'application/xml',
      'no content type': '',
    };
    for (const [what, type] of Object.entries(types)) {
      const headers: Record<string, string> = type === '' ? {} : { 'content-type': type };
      const response = await fetch(server.url, { method: 'POST', headers: { ...bearer('admin'), ...headers }, body: type === '' ? new Blob([JSON.stringify({ query: 'mutation { create_instance(id: "ct") { id } }' })]) : JSON.stringify({ query: 'mutation { create_instance(id: "ct") { id } }' }) });
      const text = await response.text();
      assert.ok(response.status >= 400 && response.status < 500, `${what}: HTTP ${response.status} ${text.slice(0, 200)}`);
    }
  });

  test('invalid UTF-8 is refused or read as replacement characters, never as another id', async () => {
    const prefix = Buffer.from('{"query": "{ instance(id: \\"acme-a');
    const suffix = Buffer.from('\\") { id } }"}');
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const answer = await send(`invalid UTF-8 ${bad.join(',')}`, Buffer.concat([prefix, Buffer.from(bad), suffix]));
      refused(`invalid UTF-8 ${bad.join(',')}`, answer, ['INVALID_INSTANCE_ID', 'GRAPHQL_PARSE_FAILED', 'BAD_REQUEST']);
    }
  });

  test('huge documents, deep nesting, alias bombs, duplicated fields and huge variables are refused with a code', async () => {
    refused('a 2 MiB document', await gql('a 2 MiB document', `{ __typename ${' '.repeat(2 * 1024 * 1024)} }`), ['REQUEST_TOO_LARGE']);
    refused('a 900 KB document of fields', await gql('900 KB of fields', `{ ${'instances { id } '.repeat(50_000)} }`), ['QUERY_TOO_COSTLY']);
    let nested = 'id';
    for (let i = 0; i < 40; i++) nested = i % 2 === 0 ? `machine { ${nested} }` : `machine_events { ${nested} }`;
    refused('40-level selection', await gql('40-level selection', `{ instance(id: "acme-a") { machines { ${nested} } } }`), ['QUERY_TOO_COSTLY']);
    refused('10,000 nested braces', await gql('10,000 nested braces', `{ ${'a { '.repeat(10_000)}${'} '.repeat(10_000)} }`), ['QUERY_TOO_COSTLY']);
    refused('10,000 nested _and in a filter', await gql('nested filter', `{ instances(where: ${'{_and: ['.repeat(2000)}{}${']}'.repeat(2000)}) { id } }`), ['QUERY_TOO_COSTLY']);
    refused('an alias bomb', await gql('alias bomb', `{ ${Array.from({ length: 5000 }, (_, i) => `a${i}: fleet { machines_aggregate { aggregate { count } } }`).join(' ')} }`), ['QUERY_TOO_COSTLY']);
    refused('200 aliased fleet fields', await gql('200 aliases', `{ ${Array.from({ length: 200 }, (_, i) => `a${i}: instances { id }`).join(' ')} }`), ['QUERY_TOO_COSTLY']);
    refused('field duplication', await gql('field duplication', `{ instances { ${'id '.repeat(120_000)} } }`), ['QUERY_TOO_COSTLY']);
    refused('a directive flood', await gql('directive flood', `{ __typename ${'@include(if: true) '.repeat(500)} }`), ['QUERY_TOO_COSTLY']);
    refused('fragment cycle', await gql('fragment cycle', `query { instances { ...A } } fragment A on Instance { id ...B } fragment B on Instance { ...A }`), ['GRAPHQL_VALIDATION_FAILED', 'QUERY_TOO_COSTLY']);
    refused('variables nested 5,000 deep', await gqlRaw('deep variables', `query($w: instances_bool_exp) { instances(where: $w) { id } }`, `{"w": ${'{"_not":'.repeat(5000)}{}${'}'.repeat(5000)}}`), ['QUERY_TOO_COSTLY']);
    refused('a 2 MiB variable', await gql('huge variable', `query($id: ID!) { instance(id: $id) { id } }`, { id: 'x'.repeat(2 * 1024 * 1024) }), ['REQUEST_TOO_LARGE']);
    refused('a 600 KB variable', await gql('big variable', `query($id: ID!) { instance(id: $id) { id } }`, { id: 'x'.repeat(600_000) }), ['INVALID_INSTANCE_ID']);
    const list = await gql('100,000-element _in', `query($ids: [String!]) { instances(where: {id: {_in: $ids}}) { id } }`, { ids: Array.from({ length: 100_000 }, (_, i) => `i${i}`) });
    assert.ok(list.status < 500, `100,000-element _in: HTTP ${list.status}`);
    refused('an oversized batch', await send('oversized batch', JSON.stringify(Array.from({ length: 50 }, () => ({ query: '{ __typename }' })))));
  });

  test('path-traversal and malformed ids answer INVALID_INSTANCE_ID (or INSTANCE_NOT_FOUND) everywhere an id is taken', async () => {
    const uses = [
      (id: string) => `{ instance(id: ${JSON.stringify(id)}) { id } }`,
      (id: string) => `mutation { create_instance(id: ${JSON.stringify(id)}) { id } }`,
      (id: string) => `mutation { insert_machines(instance_id: ${JSON.stringify(id)}, objects: []) { affected_rows } }`,
      (id: string) => `mutation { destroy_instance(id: ${JSON.stringify(id)}, archive: false) { id } }`,
      (id: string) => `mutation { archive_instance(id: ${JSON.stringify(id)}, retire: true) { id } }`,
      (id: string) => `mutation { set_instance_labels(id: ${JSON.stringify(id)}, labels: {org: "x"}) { id } }`,
      (id: string) => `{ archives(instance_id: ${JSON.stringify(id)}) { id } }`,
    ];
    for (const id of traversalIds) {
      for (const use of uses) {
        const query = use(id);
        refused(`${query}`, await gql(query, query), ['INVALID_INSTANCE_ID', 'INSTANCE_NOT_FOUND', 'INSTANCE_EXISTS']);
      }
    }
  });

  test('SQL metacharacters in every string argument of every root field and in every text filter change nothing', async () => {
    const { schema, model } = schemaForMigrations(loadMigrations(demoMigrations));
    const roots = [schema.getQueryType()!, schema.getMutationType()!];
    // Benign values for the other required arguments, chosen so that nothing can succeed in changing data.
    const benign: Record<string, string> = { target_version: '1', objects: '[]', where: '{_not: {}}', labels: '{org: "x"}', pk_columns: '{id: "none"}', grouping_keys: '[]' };
    let sent = 0;
    for (const root of roots) {
      for (const field of Object.values(root.getFields()) as Array<GraphQLField<unknown, unknown>>) {
        const stringArgs = field.args.filter((a) => isScalarType(getNamedType(a.type)) && ['String', 'ID'].includes(getNamedType(a.type).name));
        for (const target of stringArgs) {
          for (const payload of sqlPayloads) {
            const args = field.args
              .filter((a) => a === target || a.type.toString().endsWith('!'))
              .filter((a) => a.defaultValue === undefined || a === target)
              .map((a) => `${a.name}: ${a === target ? '$v' : (benign[a.name] ?? (getNamedType(a.type).name === 'BigInt' ? '999999' : '"none"'))}`);
            const selection = isObjectType(getNamedType(field.type)) ? ' { __typename }' : '';
            const op = root === schema.getMutationType() ? 'mutation' : 'query';
            const varType = getNamedType(target.type).name;
            const query = `${op}($v: ${varType}${target.type.toString().endsWith('!') ? '!' : ''}) { ${field.name}${args.length ? `(${args.join(', ')})` : ''}${selection} }`;
            const answer = await gql(`${field.name}.${target.name} = ${payload}`, query, { v: payload });
            sent += 1;
            assert.ok(answer.status < 500, `${field.name}.${target.name}: HTTP ${answer.status}`);
            if (op === 'mutation') refused(`${field.name}.${target.name} = ${payload}`, answer);
          }
        }
      }
    }
    // Text filters and cursors inside instance and fleet reads, and in row mutations (only _eq there: a LIKE could match).
    for (const table of model.tables) {
      for (const column of table.columns.filter((c) => c.kind === 'text')) {
        for (const payload of sqlPayloads) {
          for (const op of ['_eq', '_neq', '_like', '_nlike', '_ilike', '_gt', '_in']) {
            const value = op === '_in' ? '[$v]' : '$v';
            const where = `{${column.field}: {${op}: ${value}}}`;
            const read = await gql(`${table.name}.${column.field} ${op}`, `query($v: String!) { instance(id: "acme-a") { ${table.name}(where: ${where}) { __typename } } fleet(where: {labels: {_contains: {org: $v}}}) { instances_matched ${table.name}_aggregate(where: ${where}) { aggregate { count } } } }`, { v: payload });
            assert.ok(read.status < 500 && (read.body?.errors ?? []).every((e) => typeof e.extensions?.code === 'string'), `${table.name}.${column.field} ${op}: ${JSON.stringify(read.body).slice(0, 300)}`);
          }
          const update = await gql(`update ${table.name}.${column.field}`, `mutation($v: String!) { update_${table.name}(instance_id: "acme-a", where: {${column.field}: {_eq: $v}}, _set: {${column.field}: "pwned"}) { affected_rows } delete_${table.name}(instance_id: "acme-a", where: {${column.field}: {_eq: $v}}) { affected_rows } }`, { v: payload });
          assert.ok(update.status < 500, `update ${table.name}.${column.field}: HTTP ${update.status}`);
          const cursor = await gql(`cursor ${table.name}`, `query($v: String!) { instance(id: "acme-a") { ${table.name}_connection(first: 1, after: $v) { edges { cursor } } } }`, { v: payload });
          refused(`cursor ${table.name} = ${payload}`, cursor, ['INVALID_ARGUMENT']);
          sent += 3;
        }
      }
    }
    assert.ok(sent > 500, `the campaign sent ${sent} requests`);
  });

  test('afterwards: no answer leaked internals, the server is up, and every instance\'s data is unchanged', async () => {
    assert.ok(answers.length > 500);
    for (const { what, answer } of answers) {
      assert.ok(answer.status < 500, `${what}: HTTP ${answer.status}`);
      for (const error of answer.body?.errors ?? []) {
        let message = error.message;
        // Messages may quote what was sent (whole, or its first 40 characters): that is not a leak.
        for (const payload of [...sqlPayloads, ...traversalIds].filter((p) => p.length > 2)) message = message.replaceAll(payload, '<payload>').replaceAll(payload.slice(0, 40), '<payload>');
        assertNoInternals(message, what.slice(0, 200));
      }
    }
    const health = await fetch(`${server.origin}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await fleetSnapshot(server.url), before_, 'every instance and every row is as it was');
  });
});
