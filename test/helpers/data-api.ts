import assert from 'node:assert/strict';
import path from 'node:path';
import type { GraphQLResponse, InProcessServer } from './servers.js';
import { repoRoot } from './servers.js';

/** The second migration set, for the type mapping (test/data-api/types-schema.test.ts). */
export const typesMigrations = path.join(repoRoot, 'test/fixtures/types-migrations');

/** The data of a response that must have succeeded; the errors are shown when it did not. */
export function ok<T = Record<string, any>>(result: GraphQLResponse<T>, what = 'request'): T {
  assert.equal(result.errors, undefined, `${what} failed: ${JSON.stringify(result.errors)}`);
  assert.equal(result.status, 200, `${what}: HTTP ${result.status}`);
  assert.ok(result.data, `${what}: no data`);
  return result.data;
}

/** The `extensions.code` of the first error of a response that must have failed. */
export function errorCode(result: GraphQLResponse, what = 'request'): unknown {
  assert.ok(result.errors && result.errors.length > 0, `${what} should fail, got ${JSON.stringify(result.data)}`);
  return result.errors[0]!.extensions?.['code'];
}

/** Asserts that a response failed with the given code, and leaked no internals. */
export function assertCode(result: GraphQLResponse, code: string | readonly string[], what = 'request'): void {
  const actual = errorCode(result, what);
  const allowed = typeof code === 'string' ? [code] : code;
  assert.ok(allowed.includes(actual as string), `${what}: expected ${allowed.join(' or ')}, got ${String(actual)}: ${JSON.stringify(result.errors)}`);
  assert.ok(result.status < 500, `${what}: HTTP ${result.status}`);
  for (const error of result.errors ?? []) assertNoInternals(error.message, what);
}

export function assertNoInternals(message: string, what = 'error'): void {
  assert.ok(!/\/tmp\/|\bSELECT\b|\bINSERT\b|\bUPDATE\s+"|\bsqlite_|SQLITE_|\bat .*\.ts\b|\.db\b/.test(message), `${what}: internals leak into "${message}"`);
}

/** Creates instances (at the server's head version). */
export async function createInstances(server: InProcessServer, ...ids: string[]): Promise<void> {
  for (const id of ids) ok(await server.gql(`mutation($id: ID!) { create_instance(id: $id) { id } }`, { id }), `create_instance ${id}`);
}

/** Runs `{ instance(id) { <selection> } }` and returns the instance object (errors fail the test). */
export async function readInstance<T = Record<string, any>>(server: InProcessServer, id: string, selection: string, variables: Record<string, unknown> = {}, varDefs = ''): Promise<T> {
  const defs = ['$__id: ID!', ...(varDefs ? [varDefs] : [])].join(', ');
  const data = ok(await server.gql(`query(${defs}) { instance(id: $__id) { ${selection} } }`, { __id: id, ...variables }), selection.slice(0, 120));
  return data['instance'] as T;
}

/** Like readInstance, but returns the whole response (for error cases). */
export function queryInstance(server: InProcessServer, id: string, selection: string, variables: Record<string, unknown> = {}, varDefs = ''): Promise<GraphQLResponse> {
  const defs = ['$__id: ID!', ...(varDefs ? [varDefs] : [])].join(', ');
  return server.gql(`query(${defs}) { instance(id: $__id) { ${selection} } }`, { __id: id, ...variables });
}

/** The fields of a type, by introspection: name → printed type (`BigInt!`, `[String!]`, …). */
export async function typeFields(server: InProcessServer, typeName: string): Promise<Map<string, string>> {
  const data = ok(
    await server.gql(
      `query($name: String!) { __type(name: $name) { kind fields { name type { ...T } } inputFields { name type { ...T } } enumValues { name } } }
       fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`,
      { name: typeName },
    ),
  );
  const type = data['__type'];
  assert.ok(type, `type ${typeName} exists`);
  const fields: Array<{ name: string; type: TypeRef }> = type.fields ?? type.inputFields ?? [];
  return new Map(fields.map((f) => [f.name, printType(f.type)]));
}

/** The values of an enum type, by introspection. */
export async function enumValues(server: InProcessServer, typeName: string): Promise<string[]> {
  const data = ok(await server.gql(`query($name: String!) { __type(name: $name) { kind enumValues { name } } }`, { name: typeName }));
  assert.ok(data['__type'], `type ${typeName} exists`);
  assert.equal(data['__type'].kind, 'ENUM', `${typeName} is an enum`);
  return (data['__type'].enumValues as Array<{ name: string }>).map((v) => v.name);
}

/** The arguments of a field of a type, by introspection: name → printed type. */
export async function fieldArgs(server: InProcessServer, typeName: string, fieldName: string): Promise<Map<string, string>> {
  const data = ok(
    await server.gql(
      `query($name: String!) { __type(name: $name) { fields { name args { name type { ...T } } } } }
       fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`,
      { name: typeName },
    ),
  );
  const field = (data['__type']?.fields as Array<{ name: string; args: Array<{ name: string; type: TypeRef }> }> | undefined)?.find((f) => f.name === fieldName);
  assert.ok(field, `${typeName}.${fieldName} exists`);
  return new Map(field.args.map((a) => [a.name, printType(a.type)]));
}

interface TypeRef {
  kind: string;
  name: string | null;
  ofType?: TypeRef | null;
}

function printType(type: TypeRef): string {
  if (type.kind === 'NON_NULL') return `${printType(type.ofType!)}!`;
  if (type.kind === 'LIST') return `[${printType(type.ofType!)}]`;
  return type.name!;
}

/**
 * How many SQL statements the server process has run so far, if the storage layer counts them
 * (the server runs in this process). Looked up by name so the test compiles before it exists.
 */
export async function statementCounter(): Promise<(() => number) | undefined> {
  const storage = (await import('../../src/storage/index.js')) as Record<string, unknown>;
  const candidates: Array<[string, string]> = [
    ['storageStats', 'statementsExecuted'],
    ['stats', 'statementsExecuted'],
    ['SqliteDatabase', 'statementsExecuted'],
  ];
  for (const [holder, field] of candidates) {
    const object = storage[holder] as Record<string, unknown> | undefined;
    if (object !== undefined && object !== null && typeof object[field] === 'number') return () => object[field] as number;
  }
  for (const name of ['statementsExecuted', 'statementCount']) {
    const value = storage[name];
    if (typeof value === 'function') return () => Number((value as () => unknown)());
  }
  return undefined;
}

/** Exact comparison of floats computed two ways (SQLite and JavaScript may round the last bit differently). */
export function assertClose(actual: unknown, expected: number, what: string): void {
  assert.equal(typeof actual, 'number', `${what}: ${JSON.stringify(actual)} is a number`);
  assert.ok(Math.abs((actual as number) - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${String(actual)} ≈ ${expected}`);
}
