import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LibsqlCatalog } from '../../src/catalog/index.js';
import { SqliteDatabase } from '../../src/storage/index.js';
import { scrape } from '../helpers/prometheus.js';
import { filesUnder, startServer, tempDir } from '../helpers/servers.js';

test('startup reads the catalog only: 100,000 catalogued instances, no instance file opened', async (t) => {
  const dataDir = tempDir(t);
  // Catalogue 100,000 instances whose files do not exist: a startup that opened (and so
  // created) or scanned instance files would leave files behind or fail.
  LibsqlCatalog.open(`${dataDir}/catalog.db`, { busyTimeoutMs: 1000 }).close();
  const db = SqliteDatabase.open(`${dataDir}/catalog.db`, { journalMode: 'wal', busyTimeoutMs: 1000 });
  db.transaction(() => {
    const now = new Date().toISOString();
    db.run(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
       INSERT INTO instances (id, labels, state, schema_version, created_at, updated_at)
       SELECT 'tenant-' || i, json_object('org', 'org-' || (i % 100)), 'ACTIVE', 2, ?, ? FROM n`,
      [now, now],
    );
    db.run(`INSERT INTO instance_labels (instance_id, key, value) SELECT id, 'org', labels ->> '$.org' FROM instances`);
  });
  db.close();

  const startedAt = performance.now();
  const server = await startServer(t, { dataDir });
  const startupMs = performance.now() - startedAt;
  t.diagnostic(`startup with 100,000 catalogued instances: ${startupMs.toFixed(0)} ms`);

  assert.deepEqual(filesUnder(`${dataDir}/instances`), [], 'no instance file was touched');
  assert.equal(server.fleetql.instances().cacheStats().misses, 0);
  const counted = await server.gql(`{ all: instances_aggregate { aggregate { count } } org7: instances_aggregate(where: {labels: {_contains: {org: "org-7"}}}) { aggregate { count } } }`);
  assert.equal(counted.data!['all'].aggregate.count, 100_000);
  assert.equal(counted.data!['org7'].aggregate.count, 1_000);
  const page = await server.gql(`{ instances(where: {labels: {_contains: {org: "org-7"}}}, order_by: [{id: asc}], limit: 2) { id } }`);
  assert.deepEqual(page.data!['instances'], [{ id: 'tenant-10007' }, { id: 'tenant-1007' }]);
  const versions = await server.gql(`{ migrations { version instances } }`);
  assert.deepEqual(versions.data!['migrations'], [
    { version: 1, instances: 0 },
    { version: 2, instances: 100_000 },
  ]);
  // Metrics count them by state and version on every scrape, through an index.
  const scrapeStarted = performance.now();
  const metrics = await scrape(server.origin);
  t.diagnostic(`a /metrics scrape with 100,000 catalogued instances: ${(performance.now() - scrapeStarted).toFixed(0)} ms`);
  assert.equal(metrics.value('fleetql_instances', { state: 'ACTIVE', schema_version: '2' }), 100_000);
  assert.equal(metrics.value('fleetql_instances'), 100_000);
  // Reading one of them finds no file and says so, without creating one.
  const missing = await server.gql(`{ instance(id: "tenant-1") { migrations_applied { version } } }`);
  assert.equal(missing.errors?.[0]?.extensions?.['code'], 'INSTANCE_UNAVAILABLE');
  assert.deepEqual(filesUnder(`${dataDir}/instances`), []);
});
