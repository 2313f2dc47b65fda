import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { externalCheckMs, LibsqlCatalog } from '../../src/catalog/libsql-catalog.js';
import { SqliteDatabase, storageStats } from '../../src/storage/index.js';

function catalogIn(t: { after(fn: () => void): void }): { catalog: LibsqlCatalog; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-catalog-'));
  const file = path.join(dir, 'catalog.db');
  const catalog = LibsqlCatalog.open(file, { busyTimeoutMs: 1000 });
  t.after(() => {
    catalog.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { catalog, file };
}

function created(catalog: LibsqlCatalog, id: string, labels: Record<string, string> = {}) {
  return catalog.completeCreate(catalog.beginCreate(id, labels, {}, ['DESTROYED']), 1);
}

test('instance lookups are answered from memory until this connection writes', (t) => {
  const { catalog } = catalogIn(t);
  created(catalog, 'a', { org: 'x' });
  assert.equal(catalog.getInstance('a')?.state, 'ACTIVE');
  const before = storageStats.statementsExecuted;
  for (let i = 0; i < 100; i++) catalog.getInstance('a');
  assert.equal(catalog.getInstance('missing'), undefined);
  const afterMissing = storageStats.statementsExecuted;
  assert.equal(catalog.getInstance('missing'), undefined);
  assert.ok(storageStats.statementsExecuted - before <= 2, `100 repeated lookups ran ${storageStats.statementsExecuted - before} statements`);
  assert.equal(storageStats.statementsExecuted, afterMissing, 'an unknown id is remembered too');

  catalog.setLabels('a', { org: 'y' });
  assert.deepEqual(catalog.getInstance('a')?.labels, { org: 'y' }, 'a write of this connection is seen at once');
  catalog.setSchemaVersion('a', 2);
  assert.equal(catalog.getInstance('a')?.schema_version, 2);
  created(catalog, 'missing');
  assert.equal(catalog.getInstance('missing')?.state, 'ACTIVE', 'a remembered absence ends with the create');
  catalog.beginDestroy('a', {});
  assert.equal(catalog.getInstance('a')?.state, 'DESTROYING');
});

test('a lookup inside a transaction that rolls back leaves nothing stale behind', (t) => {
  const { catalog } = catalogIn(t);
  created(catalog, 'a');
  // A create over an existing instance reads it inside its transaction, then throws and rolls back.
  assert.throws(() => catalog.beginCreate('a', {}, {}, ['DESTROYED']));
  assert.equal(catalog.getInstance('a')?.state, 'ACTIVE');
  const operation = catalog.beginCreate('b', {}, {}, ['DESTROYED']);
  assert.equal(catalog.getInstance('b')?.state, 'CREATING');
  catalog.rollbackCreate(operation);
  assert.equal(catalog.getInstance('b'), undefined, 'the rolled-back create is gone from lookups too');
});

test('a change committed by another connection is seen within the external check interval', async (t) => {
  const { catalog, file } = catalogIn(t);
  created(catalog, 'a');
  assert.equal(catalog.getInstance('a')?.state, 'ACTIVE');
  const other = SqliteDatabase.open(file, { journalMode: 'wal', busyTimeoutMs: 1000 });
  other.run(`UPDATE instances SET state = 'QUARANTINED' WHERE id = ?`, ['a']);
  other.close();
  await sleep(externalCheckMs + 20);
  assert.equal(catalog.getInstance('a')?.state, 'QUARANTINED');
});

test('listings are kept under the same rule: repeated at no cost, fresh after a write or an external commit', async (t) => {
  const { catalog, file } = catalogIn(t);
  created(catalog, 'a', { org: 'x' });
  created(catalog, 'b', { org: 'x' });
  const query = { where: { labels: { _contains: { org: 'x' } } }, orderBy: [{ id: 'asc' as const }] };
  const ids = () => catalog.listInstances(query).map((record) => record.id);
  assert.deepEqual(ids(), ['a', 'b']);
  const before = storageStats.statementsExecuted;
  for (let i = 0; i < 50; i++) ids();
  assert.ok(storageStats.statementsExecuted - before <= 1, `50 repeated listings ran ${storageStats.statementsExecuted - before} statements`);
  assert.ok(Object.isFrozen(catalog.listInstances(query)), 'a kept listing is shared, so it cannot be changed');

  catalog.setLabels('b', { org: 'y' });
  assert.deepEqual(ids(), ['a'], 'a write of this connection is seen at once');
  created(catalog, 'c', { org: 'x' });
  assert.deepEqual(ids(), ['a', 'c']);

  const other = SqliteDatabase.open(file, { journalMode: 'wal', busyTimeoutMs: 1000 });
  other.run(`UPDATE instances SET state = 'QUARANTINED' WHERE id = ?`, ['a']);
  other.close();
  await sleep(externalCheckMs + 20);
  assert.equal(catalog.listInstances(query).find((record) => record.id === 'a')?.state, 'QUARANTINED');
});

test('a listing answers the lookups of the instances it listed, under the same rule', (t) => {
  const { catalog } = catalogIn(t);
  for (const id of ['a', 'b', 'c']) created(catalog, id, { org: 'x' });
  // A write clears what earlier lookups kept; the listing alone must fill it again.
  catalog.setLabels('c', { org: 'y' });
  const listed = catalog.listInstances({ where: { labels: { _contains: { org: 'x' } } } });
  assert.deepEqual(listed.map((record) => record.id).sort(), ['a', 'b']);
  const before = storageStats.statementsExecuted;
  for (const record of listed) assert.equal(catalog.getInstance(record.id), record, 'the listed record itself');
  assert.equal(storageStats.statementsExecuted, before, 'looking listed instances up read the catalog');
  assert.deepEqual(catalog.getInstance('c')?.labels, { org: 'y' }, 'an instance the listing left out is read as before');

  catalog.setSchemaVersion('a', 2);
  assert.equal(catalog.getInstance('a')?.schema_version, 2, 'a write ends what the listing gave');
});
