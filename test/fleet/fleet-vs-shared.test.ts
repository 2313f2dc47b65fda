/**
 * The fleet's promise: a fleet query answers exactly what the same query answers on ONE shared
 * database holding every instance's rows plus an instance column. Random fleets, random queries,
 * compared with SQL written here by hand (not with fleetql's own SQL generator).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'libsql';
import { seededRandom } from '../../src/demo/index.js';
import { repoRoot, startServer, type InProcessServer } from '../helpers/servers.js';

const migrationsDir = path.join(repoRoot, 'test/fixtures/fleet-migrations');

interface Item {
  id: number;
  grp: string | null;
  n: number | string | null;
  r: number | null;
  s: string | null;
}

type Spec = { gql: Record<string, unknown>; sql: string; params: unknown[] };
type Direction = 'asc' | 'asc_nulls_first' | 'asc_nulls_last' | 'desc' | 'desc_nulls_first' | 'desc_nulls_last';
const directionSql: Record<Direction, string> = {
  asc: 'ASC NULLS LAST',
  asc_nulls_first: 'ASC NULLS FIRST',
  asc_nulls_last: 'ASC NULLS LAST',
  desc: 'DESC NULLS FIRST',
  desc_nulls_first: 'DESC NULLS FIRST',
  desc_nulls_last: 'DESC NULLS LAST',
};

/** A random filter, as GraphQL input and as hand-written SQL over the shared table. */
function randomFilter(next: () => number, depth = 0): Spec {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const roll = next();
  if (depth < 2 && roll < 0.15) {
    const parts = [randomFilter(next, depth + 1), randomFilter(next, depth + 1)];
    const op = pick(['_and', '_or'] as const);
    return { gql: { [op]: parts.map((p) => p.gql) }, sql: parts.map((p) => `(${p.sql})`).join(op === '_and' ? ' AND ' : ' OR '), params: parts.flatMap((p) => p.params) };
  }
  if (depth < 2 && roll < 0.22) {
    const inner = randomFilter(next, depth + 1);
    return { gql: { _not: inner.gql }, sql: `NOT (${inner.sql})`, params: inner.params };
  }
  const column = pick(['grp', 'n', 'r', 's'] as const);
  const value = () => (column === 'grp' ? pick(['a', 'b', 'c']) : column === 's' ? pick(['x', 'xy', 'Y', 'é', '']) : column === 'r' ? Math.floor(next() * 16) / 4 - 2 : Math.floor(next() * 20) - 10);
  const op = pick(['_eq', '_neq', '_gt', '_gte', '_lt', '_lte', '_in', '_is_null', ...(column === 's' ? ['_like', '_ilike'] : [])]);
  switch (op) {
    case '_is_null': {
      const isNull = next() < 0.5;
      return { gql: { [column]: { _is_null: isNull } }, sql: `${column} IS ${isNull ? '' : 'NOT '}NULL`, params: [] };
    }
    case '_in': {
      const values = [value(), value(), value()];
      return { gql: { [column]: { _in: values } }, sql: `${column} IN (?, ?, ?)`, params: values };
    }
    case '_like':
      return { gql: { s: { _like: 'x%' } }, sql: `s GLOB 'x*'`, params: [] };
    case '_ilike':
      return { gql: { s: { _ilike: 'y%' } }, sql: `s LIKE 'y%'`, params: [] };
    default: {
      const v = value();
      const sqlOp = { _eq: '=', _neq: '<>', _gt: '>', _gte: '>=', _lt: '<', _lte: '<=' }[op as '_eq'];
      return { gql: { [column]: { [op]: v } }, sql: `${column} ${sqlOp} ?`, params: [v] };
    }
  }
}

function randomOrder(next: () => number): Array<[string, Direction]> {
  const columns = ['grp', 'n', 'r', 's', 'id'];
  const directions = Object.keys(directionSql) as Direction[];
  const count = Math.floor(next() * 3);
  const terms: Array<[string, Direction]> = [];
  for (let i = 0; i < count; i++) {
    const column = columns[Math.floor(next() * columns.length)]!;
    if (!terms.some(([c]) => c === column)) terms.push([column, directions[Math.floor(next() * directions.length)]!]);
  }
  return terms;
}

/** What GraphQL shows for a SQLite value of these columns (BigInt: number when safe). */
function shown(column: string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (column === 'r') return Number(value);
  return value;
}

async function seed(server: InProcessServer, next: () => number, shared: InstanceType<typeof Database>): Promise<string[]> {
  const ids = Array.from({ length: 9 }, (_, i) => `fleet-${String.fromCharCode(97 + i)}${i % 3}`);
  shared.exec('CREATE TABLE items (_instance_id TEXT NOT NULL, id INTEGER NOT NULL, grp TEXT, n INTEGER, r REAL, s TEXT, PRIMARY KEY (_instance_id, id))');
  const insert = shared.prepare('INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)');
  for (const id of ids) {
    const created = await server.gql(`mutation($id: ID!, $labels: JSON) { create_instance(id: $id, labels: $labels) { id } }`, { id, labels: { org: id.endsWith('0') ? 'zero' : 'other' } });
    assert.equal(created.errors, undefined);
    const count = Math.floor(next() * 14);
    const items: Item[] = [];
    for (let i = 0; i < count; i++) {
      const maybe = <T>(v: T): T | null => (next() < 0.2 ? null : v);
      items.push({
        id: i + 1 + Math.floor(next() * 3) * 100,
        grp: maybe(['a', 'b', 'c'][Math.floor(next() * 3)]!),
        n: maybe(Math.floor(next() * 20) - 10),
        r: maybe(Math.floor(next() * 16) / 4 - 2),
        s: maybe(['x', 'xy', 'Y', 'y', 'é', '', 'xz'][Math.floor(next() * 7)]!),
      });
    }
    const unique = [...new Map(items.map((item) => [item.id, item])).values()];
    if (unique.length > 0) {
      const inserted = await server.gql(`mutation($id: ID!, $objects: [items_insert_input!]!) { insert_items(instance_id: $id, objects: $objects) { affected_rows } }`, { id, objects: unique });
      assert.equal(inserted.errors, undefined, JSON.stringify(inserted.errors));
    }
    for (const item of unique) insert.run([id, item.id, item.grp, item.n, item.r, item.s]);
  }
  // One huge value, so exact 64-bit sums are exercised too.
  await server.gql(`mutation { insert_items(instance_id: "${ids[0]}", objects: [{id: 999, n: "9007199254740993", grp: "big"}]) { affected_rows } }`);
  insert.run([ids[0], 999, 'big', 9007199254740993n, null, null]);
  return ids;
}

test('fleet answers equal one shared database holding every instance\'s rows', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const next = seededRandom(20261125);
  const shared = new Database(':memory:');
  shared.defaultSafeIntegers(true);
  t.after(() => shared.close());
  await seed(server, next, shared);
  const all = (sql: string, params: unknown[]) => shared.prepare(sql).all(params) as Array<Record<string, unknown>>;

  for (let round = 0; round < 150; round++) {
    const filter = randomFilter(next);
    const orgFilter = next() < 0.3;
    const instanceSql = orgFilter ? ` AND _instance_id LIKE '%0'` : '';
    const fleetArgs = orgFilter ? '(where: {labels: {_contains: {org: "zero"}}})' : '';
    const order = randomOrder(next);
    const limit = 1 + Math.floor(next() * 12);
    const offset = Math.floor(next() * 4);
    const what = `round ${round}: where ${JSON.stringify(filter.gql)} order ${JSON.stringify(order)} limit ${limit} offset ${offset} ${fleetArgs}`;

    // Rows, ordered, limited, offset.
    const orderSql = [...order.map(([c, d]) => `${c} ${directionSql[d]}`), '_instance_id ASC', 'id ASC'].join(', ');
    const expectedRows = all(`SELECT * FROM items WHERE (${filter.sql})${instanceSql} ORDER BY ${orderSql} LIMIT ? OFFSET ?`, [...filter.params, limit, offset]).map((row) => ({
      _instance_id: row['_instance_id'],
      id: shown('id', row['id']),
      grp: row['grp'],
      n: shown('n', row['n']),
      r: shown('r', row['r']),
      s: row['s'],
    }));
    const orderGql = order.map(([c, d]) => ({ [c]: d }));
    const result = await server.gql(
      `query($where: items_bool_exp, $order: [items_order_by!], $limit: Int, $offset: Int) { fleet${fleetArgs} {
        items(where: $where, order_by: $order, limit: $limit, offset: $offset) { _instance_id id grp n r s }
        items_aggregate(where: $where) { aggregate { count c_n: count(columns: [n]) d_grp: count(columns: [grp], distinct: true) d_pair: count(columns: [grp, s], distinct: true) sum { n r } avg { n r } min { n r s } max { n r s } } coverage { targeted answered failed } }
        items_groups(grouping_keys: [grp], where: $where, order_by: [{_count: desc}], limit: 10) { group_key { grp } group_aggregate { count sum { n } max { s } } }
      } }`,
      { where: filter.gql, order: orderGql, limit, offset },
    );
    assert.equal(result.errors, undefined, `${what}: ${JSON.stringify(result.errors)}`);
    const fleet = result.data!['fleet'];
    assert.deepEqual(fleet.items, expectedRows, `${what}: rows`);

    // Aggregates.
    const [agg] = all(
      `SELECT count(*) AS count, count(n) AS c_n, count(DISTINCT grp) AS d_grp, (SELECT count(*) FROM (SELECT DISTINCT grp, s FROM items WHERE (${filter.sql})${instanceSql} AND grp IS NOT NULL AND s IS NOT NULL)) AS d_pair,
        sum(n) AS sum_n, sum(r) AS sum_r, avg(n) AS avg_n, avg(r) AS avg_r, min(n) AS min_n, min(r) AS min_r, min(s) AS min_s, max(n) AS max_n, max(r) AS max_r, max(s) AS max_s
       FROM items WHERE (${filter.sql})${instanceSql}`,
      [...filter.params, ...filter.params],
    );
    const a = agg!;
    const big = (v: unknown) => (v === null ? null : typeof v === 'bigint' && (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) ? v.toString() : Number(v));
    assert.deepEqual(
      fleet.items_aggregate.aggregate,
      {
        count: Number(a['count']),
        c_n: Number(a['c_n']),
        d_grp: Number(a['d_grp']),
        d_pair: Number(a['d_pair']),
        sum: { n: big(a['sum_n']), r: a['sum_r'] === null ? null : Number(a['sum_r']) },
        avg: { n: a['avg_n'] === null ? null : Number(a['avg_n']), r: a['avg_r'] === null ? null : Number(a['avg_r']) },
        min: { n: big(a['min_n']), r: a['min_r'] === null ? null : Number(a['min_r']), s: a['min_s'] },
        max: { n: big(a['max_n']), r: a['max_r'] === null ? null : Number(a['max_r']), s: a['max_s'] },
      },
      `${what}: aggregate`,
    );
    const targeted = orgFilter ? 3 : 9;
    assert.deepEqual(fleet.items_aggregate.coverage, { targeted, answered: targeted, failed: 0 });

    // Groups, ordered by count then key (nulls last), limited.
    const groups = all(
      `SELECT grp, count(*) AS count, sum(n) AS sum_n, max(s) AS max_s FROM items WHERE (${filter.sql})${instanceSql} GROUP BY grp ORDER BY count(*) DESC, grp ASC NULLS LAST LIMIT 10`,
      filter.params,
    );
    assert.deepEqual(
      fleet.items_groups,
      groups.map((g) => ({ group_key: { grp: g['grp'] }, group_aggregate: { count: Number(g['count']), sum: { n: big(g['sum_n']) }, max: { s: g['max_s'] } } })),
      `${what}: groups`,
    );

    // Connection: paging through everything gives exactly the shared order, each row once.
    if (round % 3 === 0) {
      const everything = all(`SELECT _instance_id, id FROM items WHERE (${filter.sql})${instanceSql} ORDER BY ${orderSql}`, filter.params).map((row) => `${row['_instance_id']}/${row['id']}`);
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 100; page++) {
        const pageResult: { data?: any; errors?: unknown } = await server.gql(
          `query($where: items_bool_exp, $order: [items_order_by!], $after: String) { fleet${fleetArgs} { items_connection(first: ${limit}, after: $after, where: $where, order_by: $order) { edges { cursor node { _instance_id id } } pageInfo { hasNextPage endCursor } } } }`,
          { where: filter.gql, order: orderGql, after },
        );
        assert.equal(pageResult.errors, undefined, `${what}: ${JSON.stringify(pageResult.errors)}`);
        const connection = pageResult.data.fleet.items_connection;
        seen.push(...connection.edges.map((edge: any) => `${edge.node._instance_id}/${edge.node.id}`));
        if (!connection.pageInfo.hasNextPage) break;
        after = connection.pageInfo.endCursor;
      }
      assert.deepEqual(seen, everything, `${what}: connection pages`);
    }
  }
});
