import assert from 'node:assert/strict';
import { createApiKey } from '../../src/auth/index.js';
import { graphql } from './servers.js';

/** One key per role, the tenant owning `acme-a` by id and every `org: acme` instance by label. */
export const keys = {
  admin: createApiKey({ id: 'ops', role: 'admin' }),
  service: createApiKey({ id: 'reports', role: 'service' }),
  tenant: createApiKey({ id: 'acme-frontend', role: 'tenant', instances: ['acme-a'], labels: { org: 'acme' } }),
} as const;
export const apiKeys = Object.values(keys).map((k) => k.entry);
export type RoleName = keyof typeof keys;
export const roleNames = Object.keys(keys) as RoleName[];

export const bearer = (role: RoleName): Record<string, string> => ({ authorization: `Bearer ${keys[role].key}` });

const machine = (id: string) => ({ id, name: `vm ${id}`, state: 'started', region: 'fra', cpu_kind: 'shared', cpus: 1, memory_mb: 256, image: 'app:1', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' });

/**
 * A small multi-tenant fleet, made as the admin: two acme instances, two globex ones (one of which
 * is archived), and a destroyed globex id, each ACTIVE one holding two machines and an event.
 */
export async function seedTenants(url: string): Promise<void> {
  const run = async (query: string, variables?: Record<string, unknown>) => {
    const response = await graphql(url, query, variables, bearer('admin'));
    assert.equal(response.errors, undefined, `${query}: ${JSON.stringify(response.errors)}`);
    return response.data!;
  };
  for (const [id, org] of [['acme-a', 'acme'], ['acme-b', 'acme'], ['globex-a', 'globex'], ['globex-archived', 'globex'], ['globex-destroyed', 'globex']] as const) {
    await run(`mutation($id: ID!, $labels: JSON) { create_instance(id: $id, labels: $labels) { id } }`, { id, labels: { org } });
    await run(`mutation($id: ID!, $o: [machines_insert_input!]!) { insert_machines(instance_id: $id, objects: $o) { affected_rows } }`, { id, o: [machine(`${id}-1`), machine(`${id}-2`)] });
    await run(`mutation($id: ID!, $m: String!) { insert_machine_events(instance_id: $id, objects: [{machine_id: $m, type: "start", status: "ok", at: "2026-01-01T00:00:01Z"}]) { affected_rows } }`, { id, m: `${id}-1` });
  }
  await run(`mutation { archive_instance(id: "globex-archived", retire: true) { id } }`);
  await run(`mutation { destroy_instance(id: "globex-destroyed", archive: false) { id } }`);
}

/** Everything a client could change: every catalogued instance (any state) and every row of every ACTIVE one. */
export async function fleetSnapshot(url: string): Promise<unknown> {
  const response = await graphql(
    url,
    `{
      instances(where: {state: {_in: [CREATING, ACTIVE, QUARANTINED, ARCHIVING, ARCHIVED, DESTROYING, DESTROYED]}}, order_by: [{id: asc}], limit: 1000) { id state labels schema_version }
      fleet(partial: false) {
        machines(order_by: [{id: asc}], limit: 1000) { _instance_id id name state region cpu_kind cpus memory_mb image created_at updated_at }
        machine_events(order_by: [{id: asc}], limit: 1000) { _instance_id id machine_id type status at }
      }
    }`,
    undefined,
    bearer('admin'),
  );
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return response.data;
}
