/**
 * A fleet top-k pushes its current k-th row down to the instances it reads later as a bound
 * (fleet-service.ts `#top`). The answers must not change: these fleets are made of ties (the same
 * few values in every instance, NULLs, equal rows across instances) where a bound that is off by
 * one instance or one NULL would drop or keep a wrong row.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DataService, type Row } from '../../src/data/index.js';
import { FleetService } from '../../src/fleet/index.js';
import { later, ScopedInstances, unrestricted, type InstanceAccess } from '../../src/instances/index.js';
import { loadMigrations } from '../../src/migrations/index.js';
import { schemaForMigrations } from '../../src/schema/index.js';
import { repoRoot, startServer, type GraphQLResponse, type InProcessServer } from '../helpers/servers.js';

const migrationsDir = path.join(repoRoot, 'test/fixtures/fleet-migrations');

type Direction = 'asc' | 'asc_nulls_first' | 'desc' | 'desc_nulls_last';
interface Item {
  instance: string;
  id: number;
  n: number | null;
  grp: string | null;
}

/** The fleet order written out by hand: each term with its NULL placement, then instance id, then key. */
function expectedOrder(items: readonly Item[], terms: ReadonlyArray<['n' | 'grp', Direction]>): Item[] {
  const compareValues = (a: number | string | null, b: number | string | null, direction: Direction): number => {
    const nullsFirst = direction === 'asc_nulls_first' || direction === 'desc';
    if (a === null || b === null) return a === b ? 0 : (a === null) === nullsFirst ? -1 : 1;
    const order = a < b ? -1 : a > b ? 1 : 0;
    return direction.startsWith('asc') ? order : -order;
  };
  return [...items].sort((a, b) => {
    for (const [column, direction] of terms) {
      const order = compareValues(a[column], b[column], direction);
      if (order !== 0) return order;
    }
    if (a.instance !== b.instance) return a.instance < b.instance ? -1 : 1;
    return a.id - b.id;
  });
}

/** 14 instances of 6 rows each, made of ties; returns every row as the fleet holds it. */
async function tiedFleet(server: InProcessServer): Promise<Item[]> {
  const ids = Array.from({ length: 14 }, (_, i) => `tie-${String(i).padStart(2, '0')}`);
  const items: Item[] = [];
  const mutation: string[] = [];
  ids.forEach((id, i) => {
    const rows = Array.from({ length: 6 }, (_, j) => {
      // Three values and NULL for n, two and NULL for grp: almost every row ties with rows of other instances.
      const n = (i + j) % 4 === 3 ? null : (i * j) % 3;
      const grp = j % 3 === 2 ? null : j % 2 === 0 ? 'a' : 'b';
      items.push({ instance: id, id: j + 1, n, grp });
      return `{id: ${j + 1}, n: ${n ?? 'null'}, grp: ${grp === null ? 'null' : `"${grp}"`}}`;
    });
    mutation.push(`c${i}: create_instance(id: "${id}") { id } i${i}: insert_items(instance_id: "${id}", objects: [${rows.join(', ')}]) { affected_rows }`);
  });
  const created = await server.gql(`mutation { ${mutation.join('\n')} }`);
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  return items;
}

const orders: Array<Array<['n' | 'grp', Direction]>> = [[], [['n', 'desc']], [['n', 'asc']], [['n', 'asc_nulls_first']], [['n', 'desc_nulls_last']], [['grp', 'asc'], ['n', 'desc']], [['n', 'desc'], ['grp', 'desc_nulls_last']]];

test('a pushed-down top-k bound gives the same rows as merging everything, ties across instances included', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const items = await tiedFleet(server);
  for (const terms of orders) {
    const expected = expectedOrder(items, terms).map((item) => `${item.instance}/${item.id}`);
    const orderBy = `[${terms.map(([column, direction]) => `{${column}: ${direction}}`).join(', ')}]`;
    for (const [limit, offset] of [[1, 0], [5, 0], [7, 3], [13, 0], [40, 11], [100, 0]] as const) {
      for (const concurrency of [1, 3]) {
        const result = await server.gql(`{ fleet(concurrency: ${concurrency}) { items(order_by: ${orderBy}, limit: ${limit}, offset: ${offset}) { _instance_id id } } }`);
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        const got = (result.data!['fleet'].items as Array<{ _instance_id: string; id: number }>).map((row) => `${row._instance_id}/${row.id}`);
        assert.deepEqual(got, expected.slice(offset, offset + limit), `order_by ${orderBy}, limit ${limit}, offset ${offset}, concurrency ${concurrency}`);
      }
    }

    // Pages of a connection walk the same order, the bound and the cursor together.
    const walked: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 30; page++) {
      const result: GraphQLResponse = await server.gql(`query Page($after: String) { fleet { items_connection(first: 9, after: $after, order_by: ${orderBy}) { edges { node { _instance_id id } } pageInfo { hasNextPage endCursor } } } }`, { after });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      const connection = result.data!['fleet'].items_connection;
      walked.push(...(connection.edges as Array<{ node: { _instance_id: string; id: number } }>).map(({ node }) => `${node._instance_id}/${node.id}`));
      if (!connection.pageInfo.hasNextPage) break;
      after = connection.pageInfo.endCursor;
    }
    assert.deepEqual(walked, expected, `connection pages, order_by ${orderBy}`);
  }
});

test('instances answering out of order (later ids first) meet a bound from a later instance and still merge exactly', async (t) => {
  const server = await startServer(t, { migrationsDir });
  const items = await tiedFleet(server);
  const view = new ScopedInstances(server.fleetql.instances(), unrestricted);
  // Every read goes the async way and the instance with the last id answers first, so instances
  // read late sort before the one the bound came from (the bound must then take ties too).
  const delayed = <T>(id: unknown, read: () => Promise<T>): Promise<T> => {
    const delay = 3 * (99 - Number(String(id).slice(4)));
    return new Promise((resolve) => setTimeout(resolve, delay)).then(read);
  };
  const reversed: InstanceAccess & Pick<ScopedInstances, 'select'> = {
    withInstance: (id, fn, options) => delayed(id, () => view.withInstance(id, fn, options)),
    withInstanceNow: (id, fn) => delayed(id, () => view.withInstance(id, fn)),
    readNow: () => later,
    select: (query) => view.select(query),
  };
  const { model } = schemaForMigrations(loadMigrations(migrationsDir));
  // Pages of 4 catalog records: 14 instances are listed in 4 statements.
  const fleet = new FleetService(new DataService(model, reversed), reversed, { concurrencyDefault: 64, concurrencyMax: 64, instanceTimeoutMs: 60_000, deadlineMs: 60_000, maxCost: 10_000, selectPage: 4 });
  const paged = await fleet.select({}, 1);
  assert.deepEqual(paged.targets, [...new Set(items.map((item) => item.instance))].sort(), 'every instance once, in id order, across pages');
  const redOnly = await fleet.select({ where: { id: { _in: ['tie-01', 'tie-05', 'tie-09', 'tie-12', 'tie-13'] } } }, 1);
  assert.deepEqual(redOnly.targets, ['tie-01', 'tie-05', 'tie-09', 'tie-12', 'tie-13'], 'a filter and the pages together');
  const table = model.table('items')!;
  for (const terms of orders) {
    const expected = expectedOrder(items, terms).map((item) => `${item.instance}/${item.id}`);
    for (const limit of [1, 4, 10]) {
      const scope = await fleet.select({}, 1);
      const answer = await fleet.list(scope, table, { order_by: terms.map(([column, direction]) => ({ [column]: direction })), limit });
      assert.deepEqual(answer.failures, []);
      const got = answer.value.map((row: Row) => `${row.instanceId}/${String(row.get('id'))}`);
      assert.deepEqual(got, expected.slice(0, limit), `order_by ${JSON.stringify(terms)}, limit ${limit}`);
    }
  }
});
