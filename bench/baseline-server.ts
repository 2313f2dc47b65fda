/**
 * The baseline a user would pick instead of fleetql: ONE shared libSQL database holding every
 * tenant's rows with a tenant column, served by a minimal GraphQL server on the same stack
 * (graphql-yoga, graphql, libsql, same versions). It answers exactly the documents in
 * lib/queries.ts, with the same shape. Not product code.
 *
 *   node --import tsx bench/baseline-server.ts <shared.db>   → prints "baseline listening on <url>"
 */
import Database from 'libsql';
import { createSchema, createYoga } from 'graphql-yoga';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: baseline-server.ts <shared.db>');
const db = new Database(file);
// WAL with synchronous=NORMAL: what one would run a shared database under. Not EXCLUSIVE locking,
// though it reads faster: under WAL that shuts every other connection out, readers too, and a
// shared database is read by more than its server (backups, admin tools, other app processes).
// fleetql's cached handles keep only a read lock, which other readers share.
db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
type Statement = ReturnType<typeof db.prepare>;
const statements = new Map<string, Statement>();
const statement = (sql: string): Statement => {
  let cached = statements.get(sql);
  if (cached === undefined) {
    cached = db.prepare(sql);
    statements.set(sql, cached);
  }
  return cached;
};

interface MachinesArgs {
  where?: { state?: { _eq?: string } } | null;
  order_by?: Array<{ created_at?: 'asc' | 'desc' }> | null;
  limit?: number | null;
}
interface Scope {
  /** null: the whole fleet */
  tenants: { sql: string; params: unknown[] } | null;
}

function machineFilter(scope: Scope, where: MachinesArgs['where'], params: unknown[]): string {
  const predicates: string[] = [];
  if (scope.tenants !== null) {
    predicates.push(scope.tenants.sql);
    params.push(...scope.tenants.params);
  }
  if (where?.state?._eq !== undefined) {
    predicates.push('state = ?');
    params.push(where.state._eq);
  }
  return predicates.length === 0 ? '' : `WHERE ${predicates.join(' AND ')}`;
}

function machines(scope: Scope, args: MachinesArgs) {
  const params: unknown[] = [];
  const where = machineFilter(scope, args.where, params);
  const order = (args.order_by ?? []).map((o) => `created_at ${o.created_at === 'desc' ? 'DESC' : 'ASC'}`);
  params.push(Math.min(args.limit ?? 100, 1000));
  const sql = `SELECT tenant AS _instance_id, id, name, state, cpus, memory_mb, created_at FROM machines ${where} ORDER BY ${[...order, 'tenant', 'id'].join(', ')} LIMIT ?`;
  return statement(sql).all(params);
}

function aggregate(scope: Scope, args: Pick<MachinesArgs, 'where'>) {
  const params: unknown[] = [];
  const where = machineFilter(scope, args.where, params);
  const row = statement(`SELECT count(*) AS count, sum(cpus) AS cpus, sum(memory_mb) AS memory_mb FROM machines ${where}`).get(params) as { count: number; cpus: number | null; memory_mb: number | null };
  return { aggregate: { count: row.count, sum: { cpus: row.cpus, memory_mb: row.memory_mb } } };
}

const schema = createSchema({
  typeDefs: /* GraphQL */ `
    scalar JSON
    enum order_by { asc desc }
    input String_comparison_exp { _eq: String }
    input machines_bool_exp { state: String_comparison_exp }
    input machines_order_by { created_at: order_by }
    input labels_bool_exp { _contains: JSON }
    input instances_bool_exp { labels: labels_bool_exp }
    type machines { _instance_id: ID! id: String! name: String! state: String! cpus: Int! memory_mb: Int! created_at: String! }
    type machines_sum_fields { cpus: Float memory_mb: Float }
    type machines_aggregate_fields { count: Int! sum: machines_sum_fields! }
    type machines_aggregate { aggregate: machines_aggregate_fields! }
    type Instance {
      id: ID!
      machines(where: machines_bool_exp, order_by: [machines_order_by!], limit: Int): [machines!]!
      machines_aggregate(where: machines_bool_exp): machines_aggregate!
    }
    type Fleet {
      machines(where: machines_bool_exp, order_by: [machines_order_by!], limit: Int): [machines!]!
      machines_aggregate(where: machines_bool_exp): machines_aggregate!
    }
    type Query {
      instance(id: ID!): Instance
      fleet(where: instances_bool_exp): Fleet!
    }
  `,
  resolvers: {
    Query: {
      instance: (_root: unknown, { id }: { id: string }) =>
        statement('SELECT id FROM tenants WHERE id = ?').get([id]) === undefined ? null : { tenants: { sql: 'tenant = ?', params: [id] } },
      fleet: (_root: unknown, { where }: { where?: { labels?: { _contains?: { org?: string } } } }) => {
        const org = where?.labels?._contains?.org;
        return { tenants: org === undefined ? null : { sql: 'tenant IN (SELECT id FROM tenants WHERE org = ?)', params: [org] } };
      },
    },
    Instance: {
      id: (scope: Scope) => scope.tenants?.params[0],
      machines: (scope: Scope, args: MachinesArgs) => machines(scope, args),
      machines_aggregate: (scope: Scope, args: MachinesArgs) => aggregate(scope, args),
    },
    Fleet: {
      machines: (scope: Scope, args: MachinesArgs) => machines(scope, args),
      machines_aggregate: (scope: Scope, args: MachinesArgs) => aggregate(scope, args),
    },
  },
});

const yoga = createYoga({ schema, graphiql: false, landingPage: false, logging: false });
const server = http.createServer(yoga);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`baseline listening on http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
