/**
 * Which journal mode should instance files use? Measures, through fleetql's own instance service,
 * creating N instances, a cold first read of each (open + query, nothing cached) and a warm read,
 * for `delete` (rollback journal) and `wal`. Ratios are taken in the same run.
 *
 *   npx tsx bench/journal-mode.ts [instances=2000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LibsqlCatalog } from '../src/catalog/index.js';
import { InstanceService } from '../src/instances/index.js';
import { loadMigrations } from '../src/migrations/index.js';
import type { JournalMode } from '../src/storage/index.js';

const count = Number(process.argv[2] ?? 2000);
const migrations = loadMigrations(path.resolve('migrations'));

async function measure(mode: JournalMode) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fleetql-bench-${mode}-`));
  const catalog = LibsqlCatalog.open(path.join(dir, 'catalog.db'), { busyTimeoutMs: 5000 });
  const open = () =>
    new InstanceService({ catalog, migrations, instancesDir: path.join(dir, 'instances'), snapshotsDir: path.join(dir, 'snapshots'), journalMode: mode, busyTimeoutMs: 5000, maxOpenDescriptors: 18_000 });
  const ids = Array.from({ length: count }, (_, i) => `bench-${i}`);
  let service = open();
  let start = performance.now();
  for (const id of ids) await service.create(id, { org: `org-${Number(id.slice(6)) % 10}` });
  const createMs = performance.now() - start;
  await service.close();

  service = open();
  const read = (id: string) => service.withInstance(id, (db) => db.get(`SELECT count(*) AS n, max(created_at) AS newest FROM machines WHERE state = ?`, ['failed']));
  start = performance.now();
  for (const id of ids) await read(id);
  const coldMs = performance.now() - start;
  start = performance.now();
  for (const id of ids) await read(id);
  const warmMs = performance.now() - start;
  const descriptors = service.cacheStats().descriptors;
  await service.close();
  catalog.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { mode, createMs, coldMs, warmMs, descriptors };
}

const rows = [await measure('delete'), await measure('wal')];
const us = (ms: number) => ((ms * 1000) / count).toFixed(0);
console.log(`| journal mode | create µs/instance | cold read µs/instance | warm read µs/instance | descriptors held (${count} open) |`);
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.mode} | ${us(r.createMs)} | ${us(r.coldMs)} | ${us(r.warmMs)} | ${r.descriptors} |`);
const [del, wal] = rows as [(typeof rows)[0], (typeof rows)[0]];
console.log(`\ncold read wal/delete = ${(wal.coldMs / del.coldMs).toFixed(2)}×, warm read wal/delete = ${(wal.warmMs / del.warmMs).toFixed(2)}×, create wal/delete = ${(wal.createMs / del.createMs).toFixed(2)}×`);
