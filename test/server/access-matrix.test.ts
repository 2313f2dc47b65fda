/**
 * The access matrix: every role × every root Query field, every Mutation (the generated data
 * mutations of the demo schema included) and the subscription, allowed or refused as the product
 * says, against a real server in production mode. The expected policy is written here, apart from
 * the code; a root field this table does not know fails the test, so a new field must be classified.
 * Then: a tenant cannot tell another tenant's instances (active, archived, destroyed) from ids that
 * do not exist, and nothing a refused request touched changed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadMigrations } from '../../src/migrations/index.js';
import { schemaForMigrations } from '../../src/schema/index.js';
import { bearer, fleetSnapshot, seedTenants, apiKeys, type RoleName } from '../helpers/auth.js';
import { demoMigrations, graphql, startServer, type GraphQLResponse, type InProcessServer } from '../helpers/servers.js';

type Kind = 'query' | 'mutation' | 'subscription';
interface Case {
  kind: Kind;
  /** The operation, aimed at `id` where the field takes an instance. */
  op: (id: string) => string;
  allowed: readonly RoleName[];
  /** Aimed at one instance: a tenant asking for another tenant's gets INSTANCE_NOT_FOUND. */
  instanceScoped?: boolean;
}

const everyone: readonly RoleName[] = ['admin', 'service', 'tenant'];
const operators: readonly RoleName[] = ['admin', 'service'];
const writers: readonly RoleName[] = ['admin', 'tenant'];
const admins: readonly RoleName[] = ['admin'];
const noRows = '{_not: {}}';

const cases: Record<string, Case> = {
  instance: { kind: 'query', op: (id) => `{ instance(id: "${id}") { id labels state size_bytes migrations_applied { version } machines { id machine_events { id } } machines_by_pk(id: "${id}-1") { id } machines_aggregate { aggregate { count } } machines_groups(grouping_keys: [region]) { group_aggregate { count } } machines_connection(first: 1) { edges { node { id } } } } }`, allowed: everyone, instanceScoped: true },
  instances: { kind: 'query', op: () => `{ instances { id } }`, allowed: everyone },
  instances_aggregate: { kind: 'query', op: () => `{ instances_aggregate { aggregate { count } } }`, allowed: everyone },
  fleet: { kind: 'query', op: () => `{ fleet { instances_matched machines_aggregate { aggregate { count } } } }`, allowed: everyone },
  migrations: { kind: 'query', op: () => `{ migrations { version instances } }`, allowed: operators },
  rollouts: { kind: 'query', op: () => `{ rollouts { id } }`, allowed: operators },
  rollout: { kind: 'query', op: () => `{ rollout(id: "999") { id } }`, allowed: operators },
  archives: { kind: 'query', op: () => `{ archives { id instance_id } }`, allowed: operators },
  create_instance: { kind: 'mutation', op: () => `mutation { create_instance(id: "matrix-new") { id } }`, allowed: admins },
  set_instance_labels: { kind: 'mutation', op: (id) => `mutation { set_instance_labels(id: "${id}", labels: {org: "acme"}) { id } }`, allowed: admins },
  destroy_instance: { kind: 'mutation', op: () => `mutation { destroy_instance(id: "matrix-new", archive: false) { id } }`, allowed: admins },
  archive_instance: { kind: 'mutation', op: (id) => `mutation { archive_instance(id: "${id}") { id } }`, allowed: admins },
  restore_instance: { kind: 'mutation', op: () => `mutation { restore_instance(archive_id: "no-such-archive") { id } }`, allowed: admins },
  start_rollout: { kind: 'mutation', op: () => `mutation { start_rollout(target_version: 1, where: {id: {_eq: "nobody"}}) { id } }`, allowed: admins },
  pause_rollout: { kind: 'mutation', op: () => `mutation { pause_rollout(id: "999") { id } }`, allowed: admins },
  resume_rollout: { kind: 'mutation', op: () => `mutation { resume_rollout(id: "999") { id } }`, allowed: admins },
  abort_rollout: { kind: 'mutation', op: () => `mutation { abort_rollout(id: "999") { id } }`, allowed: admins },
  rollback_rollout: { kind: 'mutation', op: () => `mutation { rollback_rollout(id: "999") { id } }`, allowed: admins },
  // Data mutations, each a no-op on the rows (so the fleet's data is unchanged whoever runs them).
  insert_machines: { kind: 'mutation', op: (id) => `mutation { insert_machines(instance_id: "${id}", objects: []) { affected_rows } }`, allowed: writers, instanceScoped: true },
  update_machines: { kind: 'mutation', op: (id) => `mutation { update_machines(instance_id: "${id}", where: ${noRows}, _set: {name: "x"}) { affected_rows } }`, allowed: writers, instanceScoped: true },
  delete_machines: { kind: 'mutation', op: (id) => `mutation { delete_machines(instance_id: "${id}", where: ${noRows}) { affected_rows } }`, allowed: writers, instanceScoped: true },
  update_machines_by_pk: { kind: 'mutation', op: (id) => `mutation { update_machines_by_pk(instance_id: "${id}", pk_columns: {id: "none"}, _set: {name: "x"}) { id } }`, allowed: writers, instanceScoped: true },
  delete_machines_by_pk: { kind: 'mutation', op: (id) => `mutation { delete_machines_by_pk(instance_id: "${id}", id: "none") { id } }`, allowed: writers, instanceScoped: true },
  insert_machine_events: { kind: 'mutation', op: (id) => `mutation { insert_machine_events(instance_id: "${id}", objects: []) { affected_rows } }`, allowed: writers, instanceScoped: true },
  update_machine_events: { kind: 'mutation', op: (id) => `mutation { update_machine_events(instance_id: "${id}", where: ${noRows}, _set: {status: "x"}) { affected_rows } }`, allowed: writers, instanceScoped: true },
  delete_machine_events: { kind: 'mutation', op: (id) => `mutation { delete_machine_events(instance_id: "${id}", where: ${noRows}) { affected_rows } }`, allowed: writers, instanceScoped: true },
  update_machine_events_by_pk: { kind: 'mutation', op: (id) => `mutation { update_machine_events_by_pk(instance_id: "${id}", pk_columns: {id: 999999}, _set: {status: "x"}) { id } }`, allowed: writers, instanceScoped: true },
  delete_machine_events_by_pk: { kind: 'mutation', op: (id) => `mutation { delete_machine_events_by_pk(instance_id: "${id}", id: 999999) { id } }`, allowed: writers, instanceScoped: true },
  rollout_progress: { kind: 'subscription', op: () => `subscription { rollout_progress(id: "999") { id state } }`, allowed: operators },
};

/** A subscription over SSE, read until the server ends the stream: the first payload. */
async function subscribeOnce(url: string, query: string, headers: Record<string, string>): Promise<GraphQLResponse> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers }, body: JSON.stringify({ query }), signal: AbortSignal.timeout(20_000) });
  const text = await response.text();
  const data = text.split('\n').find((line) => line.startsWith('data:') && line.length > 6);
  const payload = data === undefined ? JSON.parse(text || '{}') : JSON.parse(data.slice(5));
  return { ...payload, status: response.status, headers: response.headers };
}

function run(server: InProcessServer, kind: Kind, query: string, role: RoleName): Promise<GraphQLResponse> {
  return kind === 'subscription' ? subscribeOnce(server.url, query, bearer(role)) : graphql(server.url, query, undefined, bearer(role));
}

const codes = (response: GraphQLResponse) => (response.errors ?? []).map((e) => e.extensions?.['code']);

describe('access matrix', () => {
  let server: InProcessServer;
  const cleanups: Array<() => unknown> = [];

  before(async () => {
    server = await startServer({ after: (fn) => void cleanups.push(fn) }, { mode: 'production', apiKeys, rateLimitPerSecond: 0 });
    await seedTenants(server.url);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the table covers every root field of the schema, and nothing else', () => {
    const { schema } = schemaForMigrations(loadMigrations(demoMigrations));
    const fields = (type: { getFields(): Record<string, unknown> } | null | undefined) => Object.keys(type?.getFields() ?? {});
    const inSchema = [...fields(schema.getQueryType()), ...fields(schema.getMutationType()), ...fields(schema.getSubscriptionType())].sort();
    assert.deepEqual(Object.keys(cases).sort(), inSchema);
  });

  // Roles that change nothing run first; the admin, who creates and destroys, last.
  for (const role of ['service', 'tenant', 'admin'] as const) {
    test(`${role}: every root field allowed or refused as the product says`, async () => {
      const snapshot = role === 'admin' ? undefined : await fleetSnapshot(server.url);
      const wrong: string[] = [];
      for (const [field, c] of Object.entries(cases)) {
        const response = await run(server, c.kind, c.op('acme-a'), role);
        const got = codes(response);
        if (c.allowed.includes(role)) {
          if (got.includes('FORBIDDEN') || got.includes('UNAUTHENTICATED') || response.status >= 400) wrong.push(`${field}: allowed, got ${response.status} ${JSON.stringify(response.errors)}`);
        } else if (!(got.length === 1 && got[0] === 'FORBIDDEN' && (response.data === null || response.data === undefined))) {
          wrong.push(`${field}: refused, got ${response.status} ${JSON.stringify(response.errors)} data ${JSON.stringify(response.data)}`);
        }
      }
      assert.deepEqual(wrong, []);
      if (snapshot !== undefined) assert.deepEqual(await fleetSnapshot(server.url), snapshot, `nothing changed after the ${role}'s requests`);
    });
  }

  test('a tenant cannot tell another tenant\'s instances (active, archived, destroyed) from ids that do not exist', async () => {
    const wrong: string[] = [];
    for (const [field, c] of Object.entries(cases)) {
      if (!c.instanceScoped) continue;
      const missing = await run(server, c.kind, c.op('no-such-id'), 'tenant');
      assert.deepEqual(codes(missing), ['INSTANCE_NOT_FOUND'], `${field} on a missing id`);
      for (const other of ['globex-a', 'globex-archived', 'globex-destroyed']) {
        const response = await run(server, c.kind, c.op(other), 'tenant');
        // The same answer as for the missing id, with the id swapped: same codes, messages, data, status.
        const normalized = JSON.stringify({ errors: response.errors, data: response.data, status: response.status }).replaceAll(other, 'no-such-id');
        const expected = JSON.stringify({ errors: missing.errors, data: missing.data, status: missing.status });
        if (normalized !== expected) wrong.push(`${field} on ${other}: ${normalized} vs ${expected}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('a tenant\'s lists, counts and fleet are restricted to its own instances (by id and by label)', async () => {
    const asTenant = await graphql<any>(
      server.url,
      `{
        all: instances(where: {state: {_in: [ACTIVE, ARCHIVED, DESTROYED]}}, order_by: [{id: asc}]) { id }
        other: instances(where: {id: {_eq: "globex-a"}}) { id }
        instances_aggregate { aggregate { count } }
        fleet { instances_matched machines(order_by: [{id: asc}]) { _instance_id id } machines_aggregate { aggregate { count } } }
        globex: fleet(where: {labels: {_contains: {org: "globex"}}}) { instances_matched }
        events: instance(id: "acme-b") { machines(order_by: [{id: asc}]) { id machine_events { id machine { id } } } }
      }`,
      undefined,
      bearer('tenant'),
    );
    assert.equal(asTenant.errors, undefined, JSON.stringify(asTenant.errors));
    assert.deepEqual(asTenant.data.all.map((i: { id: string }) => i.id), ['acme-a', 'acme-b']);
    assert.deepEqual(asTenant.data.other, []);
    assert.equal(asTenant.data.instances_aggregate.aggregate.count, 2);
    assert.equal(asTenant.data.fleet.instances_matched, 2);
    assert.deepEqual([...new Set(asTenant.data.fleet.machines.map((m: { _instance_id: string }) => m._instance_id))], ['acme-a', 'acme-b']);
    assert.equal(asTenant.data.fleet.machines_aggregate.aggregate.count, 4);
    assert.equal(asTenant.data.globex.instances_matched, 0);
    assert.equal(asTenant.data.events.machines[0].machine_events[0].machine.id, 'acme-b-1');

    const asService = await graphql<any>(server.url, `{ fleet { instances_matched } instances_aggregate { aggregate { count } } }`, undefined, bearer('service'));
    assert.equal(asService.data.fleet.instances_matched, 3);
    assert.equal(asService.data.instances_aggregate.aggregate.count, 4); // ACTIVE ×3 and the ARCHIVED one
  });

  test('a tenant writes its own rows; a service writes none', async () => {
    const write = (role: RoleName, id: string) =>
      graphql<any>(server.url, `mutation { update_machines(instance_id: "${id}", where: {id: {_eq: "${id}-2"}}, _set: {name: "renamed"}) { affected_rows } }`, undefined, bearer(role));
    const own = await write('tenant', 'acme-b');
    assert.equal(own.errors, undefined, JSON.stringify(own.errors));
    assert.equal(own.data.update_machines.affected_rows, 1);
    assert.deepEqual(codes(await write('tenant', 'globex-a')), ['INSTANCE_NOT_FOUND']);
    assert.deepEqual(codes(await write('service', 'acme-b')), ['FORBIDDEN']);
  });
});
