import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startServer } from '../helpers/servers.js';

test('graphql-js errors carry codes too: parse, validation, variables, scalars', async (t) => {
  const server = await startServer(t);
  const code = async (query: string, variables?: Record<string, unknown>) => (await server.gql(query, variables)).errors?.[0]?.extensions?.['code'];
  assert.equal(await code('{ instances { id '), 'GRAPHQL_PARSE_FAILED');
  assert.equal(await code('{ instances { no_such_field } }'), 'GRAPHQL_VALIDATION_FAILED');
  assert.equal(await code('query($n: Int) { instances(limit: $n) { id } }', { n: 'ten' }), 'BAD_USER_INPUT');
  assert.equal(await code('query($id: ID!) { instance(id: $id) { id } }', {}), 'BAD_USER_INPUT');
  assert.equal(await code('{ instances(limit: 99999999999) { id } }'), 'GRAPHQL_VALIDATION_FAILED');
  await server.gql('mutation { create_instance(id: "a") { id } }');
  assert.equal(await code('{ instance(id: "a") { machines(where: {cpus: {_eq: "99999999999999999999999"}}) { id } } }'), 'INVALID_ARGUMENT');
  assert.equal(await code('query($v: BigInt) { instance(id: "a") { machines(where: {cpus: {_eq: $v}}) { id } } }', { v: '1e400' }), 'INVALID_ARGUMENT');
});
