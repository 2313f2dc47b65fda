/**
 * A fleet statement asked again runs with its parameters inlined: RecentQuestions remembers what
 * was asked, and a fleet question asked twice gives the same answer both ways.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DataService } from '../../src/data/index.js';
import { FleetService, RecentQuestions } from '../../src/fleet/index.js';
import { ScopedInstances, unrestricted } from '../../src/instances/index.js';
import { loadMigrations } from '../../src/migrations/index.js';
import { schemaForMigrations } from '../../src/schema/index.js';
import { SqliteDatabase } from '../../src/storage/index.js';
import { repoRoot, startServer } from '../helpers/servers.js';

const migrationsDir = path.join(repoRoot, 'test/fixtures/fleet-migrations');

test('RecentQuestions: asked before only within its capacity, by SQL text and parameters', () => {
  const recent = new RecentQuestions(2);
  assert.equal(recent.askedBefore('SELECT ?', ['a']), false);
  assert.equal(recent.askedBefore('SELECT ?', ['a']), true);
  assert.equal(recent.askedBefore('SELECT ?', ['b']), false, 'other parameters: another statement');
  assert.equal(recent.askedBefore('SELECT ?', [1n]), false);
  assert.equal(recent.askedBefore('SELECT ?', ['a']), false, 'pushed out by two others since');
  assert.equal(recent.askedBefore('SELECT ?', [1n]), true);
});

test('a fleet question asked again runs inlined on every instance and answers the same', async (t) => {
  const server = await startServer(t, { migrationsDir });
  for (const [id, rows] of [
    ['in-a', `{id: 1, n: "5", grp: "O'Brien"}, {id: 2, n: "7", grp: "x"}`],
    ['in-b', `{id: 1, n: "11", grp: "O'Brien"}`],
    ['in-c', `{id: 1, n: "13", grp: "y"}`],
  ] as const) {
    const created = await server.gql(`mutation { create_instance(id: "${id}") { id } insert_items(instance_id: "${id}", objects: [${rows.replaceAll("O'Brien", "O\\u0027Brien")}]) { affected_rows } }`);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  }
  const view = new ScopedInstances(server.fleetql.instances(), unrestricted);
  const { model } = schemaForMigrations(loadMigrations(migrationsDir));
  const table = model.table('items')!;
  const fleet = new FleetService(new DataService(model, view), view, { concurrencyDefault: 4, concurrencyMax: 4, instanceTimeoutMs: 60_000, deadlineMs: 60_000, maxCost: 10_000 }, undefined, new RecentQuestions());
  const texts: string[] = [];
  const rowReader = SqliteDatabase.prototype.rowReader;
  SqliteDatabase.prototype.rowReader = function (this: SqliteDatabase, sql: string) {
    texts.push(sql);
    return rowReader.call(this, sql);
  };
  t.after(() => {
    SqliteDatabase.prototype.rowReader = rowReader;
  });
  const ask = async () => {
    const answer = await fleet.aggregate(await fleet.select({}, 1), table, { grp: { _eq: "O'Brien" } });
    assert.deepEqual(answer.failures, []);
    return answer.value.values[answer.value.layout.index.get('count')!];
  };
  assert.equal(await ask(), 2n);
  assert.equal(texts.length, 3);
  assert.ok(texts.every((sql) => !sql.includes("'O''Brien'")), 'asked once: bound');
  texts.length = 0;
  assert.equal(await ask(), 2n);
  assert.equal(texts.length, 3);
  assert.ok(texts.every((sql) => sql.includes("'O''Brien'")), `asked again: inlined (${texts[0]})`);
});
