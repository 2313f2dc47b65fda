/**
 * Builds (and caches) the fleets the benchmark measures: N instances of the demo domain as
 * fleetql lays them out (catalog + one file per instance), and the same rows in ONE shared libSQL
 * database with a tenant column, for the baseline.
 *
 * Speed without shortcuts in what is built: a few template instances are created and filled through
 * fleetql's own instance service; every fleet instance is then created from one of those images with
 * `InstanceService.createFromImage` (the restore path: journaled create, integrity check, catalog
 * rows written by the catalog API). The build runs in /dev/shm, where fsync costs nothing, and the
 * finished data directory is copied to the cache on disk, keyed by size and `dataVersion`.
 */
import Database from 'libsql';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LibsqlCatalog } from '../../src/catalog/index.js';
import { expandConfig } from '../../src/config/index.js';
import { seededRandom } from '../../src/demo/index.js';
import { InstanceService, instanceSettings } from '../../src/instances/index.js';
import { loadMigrations, type MigrationSet } from '../../src/migrations/index.js';

/** Bump when what a fleet holds changes, so stale caches are not reused. */
export const dataVersion = 1;
export const machinesPerInstance = 50;
export const eventsPerMachine = 3;
const templateCount = 8;
/** Instance i carries org `org-(i % orgCount)`: one org is 1% of the fleet. */
export const orgCount = 100;
const regions = ['fra', 'iad', 'sin', 'gru'];
const plans = ['free', 'pro', 'enterprise'];

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const demoMigrationsDir = path.join(repoRoot, 'migrations');
export const cacheRoot = process.env['FLEETQL_BENCH_CACHE'] ?? path.join(os.tmpdir(), 'fleetql-bench-cache');

export interface Fleet {
  size: number;
  /** A fleetql data directory (catalog.db, instances/…). */
  dataDir: string;
  /** The shared baseline database. */
  sharedDb: string;
  ids: string[];
  /** Instance files, in id order. */
  files: string[];
  /** Ids of one org: 1% of the fleet. */
  prunedOrg: string;
  prunedFiles: string[];
  bytes: number;
}

export const instanceId = (i: number) => `t-${String(i).padStart(6, '0')}`;
export const labelsOf = (i: number) => ({ org: `org-${i % orgCount}`, region: regions[i % regions.length]!, plan: plans[i % plans.length]! });

function instanceService(dataDir: string, migrations: MigrationSet, catalog: LibsqlCatalog): InstanceService {
  const config = expandConfig({ dataDir, migrationsDir: demoMigrationsDir, demo: false });
  // Building fleets needs few handles at a time, and no migration threads.
  return new InstanceService({ catalog, migrations, ...instanceSettings(config), maxOpenDescriptors: 64, migrationThreads: 0 });
}

const states = ['started', 'started', 'started', 'stopped', 'stopped', 'failed', 'created'];
const sizes = [
  ['shared', 1, 256],
  ['shared', 1, 512],
  ['shared', 2, 1024],
  ['performance', 2, 4096],
  ['performance', 4, 8192],
] as const;

/** Template images of the demo schema at head, each filled with its own rows through fleetql. */
async function buildTemplates(dir: string, migrations: MigrationSet): Promise<Buffer[]> {
  const catalog = LibsqlCatalog.open(path.join(dir, 'catalog.db'), { busyTimeoutMs: 5000 });
  const service = instanceService(dir, migrations, catalog);
  const images: Buffer[] = [];
  try {
    for (let t = 0; t < templateCount; t++) {
      const id = `template-${t}`;
      await service.create(id, {});
      const next = seededRandom(1000 + t);
      await service.withInstance(id, (db) =>
        db.transaction(() => {
          const epoch = Date.parse('2026-01-01T00:00:00Z');
          for (let m = 0; m < machinesPerInstance; m++) {
            const created = epoch + Math.floor(next() * 300 * 86_400_000);
            const [cpuKind, cpus, memory] = sizes[Math.floor(next() * sizes.length)]!;
            const machineId = `m${t}-${String(m).padStart(3, '0')}`;
            db.run(`INSERT INTO machines (id, name, state, region, cpu_kind, cpus, memory_mb, image, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
              machineId,
              `app-${m}`,
              states[Math.floor(next() * states.length)]!,
              regions[m % regions.length]!,
              cpuKind,
              cpus,
              memory,
              'registry.fleetql.dev/app:1.5.0',
              new Date(created).toISOString(),
              new Date(created + 3_600_000).toISOString(),
            ]);
            for (let e = 0; e < eventsPerMachine; e++) {
              db.run(`INSERT INTO machine_events (machine_id, type, status, at) VALUES (?, ?, ?, ?)`, [machineId, ['create', 'start', 'stop'][e]!, 'ok', new Date(created + e * 60_000).toISOString()]);
            }
          }
        }),
      );
    }
    await service.close();
    const config = expandConfig({ dataDir: dir, migrationsDir: demoMigrationsDir, demo: false });
    for (let t = 0; t < templateCount; t++) {
      images.push(fs.readFileSync(fileOfInstance(config.instancesDir, `template-${t}`)));
    }
  } finally {
    catalog.close();
  }
  return images;
}

/** Where fleetql keeps an instance's file; found on disk, not recomputed (the layout is fleetql's own). */
function fileOfInstance(instancesDir: string, id: string): string {
  const found = (fs.readdirSync(instancesDir, { recursive: true }) as string[]).find((entry) => path.basename(entry) === `${id}.db`);
  if (found === undefined) throw new Error(`no file for ${id}`);
  return path.join(instancesDir, found);
}

function indexFiles(instancesDir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of fs.readdirSync(instancesDir, { recursive: true }) as string[]) {
    if (entry.endsWith('.db')) files.set(path.basename(entry, '.db'), path.join(instancesDir, entry));
  }
  return files;
}

/** The shared baseline: every instance's rows in one database, keyed by tenant, with indexes for both kinds of query. */
function buildShared(file: string, templates: string[], size: number): void {
  const db = new Database(file);
  // Rollback journal while building: the file is complete once closed (the baseline server turns WAL on).
  db.exec(`PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF;
    CREATE TABLE tenants (id TEXT PRIMARY KEY, org TEXT NOT NULL, region TEXT NOT NULL, plan TEXT NOT NULL);
    CREATE INDEX tenants_org ON tenants (org, id);
    CREATE TABLE machines (tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, region TEXT NOT NULL,
      cpu_kind TEXT NOT NULL, cpus INTEGER NOT NULL, memory_mb INTEGER NOT NULL, image TEXT NOT NULL, created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;
    CREATE TABLE machine_events (tenant TEXT NOT NULL, id INTEGER NOT NULL, machine_id TEXT NOT NULL, type TEXT NOT NULL,
      status TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (tenant, id)) WITHOUT ROWID;`);
  templates.forEach((template, t) => db.exec(`ATTACH DATABASE '${template.replaceAll("'", "''")}' AS tpl${t}`));
  const tenant = db.prepare(`INSERT INTO tenants (id, org, region, plan) VALUES (?, ?, ?, ?)`);
  const machines = templates.map((_, t) => db.prepare(`INSERT INTO machines SELECT ?, * FROM tpl${t}.machines`));
  const events = templates.map((_, t) => db.prepare(`INSERT INTO machine_events SELECT ?, * FROM tpl${t}.machine_events`));
  db.exec('BEGIN');
  for (let i = 0; i < size; i++) {
    const id = instanceId(i);
    const labels = labelsOf(i);
    tenant.run([id, labels.org, labels.region, labels.plan]);
    machines[i % templates.length]!.run([id]);
    events[i % templates.length]!.run([id]);
  }
  db.exec('COMMIT');
  // Indexes after the rows (faster to build); the per-tenant ones mirror each instance's own indexes.
  db.exec(`CREATE INDEX machines_tenant_state ON machines (tenant, state);
    CREATE INDEX machines_tenant_created_at ON machines (tenant, created_at);
    CREATE INDEX machines_state ON machines (state);
    CREATE INDEX machines_created_at ON machines (created_at);
    CREATE INDEX machine_events_machine ON machine_events (tenant, machine_id, at);
    ANALYZE;`);
  templates.forEach((_, t) => db.exec(`DETACH DATABASE tpl${t}`));
  db.close();
}

function describe(size: number, dir: string): Fleet {
  const config = expandConfig({ dataDir: path.join(dir, 'data'), migrationsDir: demoMigrationsDir, demo: false });
  const byId = indexFiles(config.instancesDir);
  const ids = Array.from({ length: size }, (_, i) => instanceId(i));
  const files = ids.map((id) => byId.get(id) ?? fail(`fleet cache ${dir} lacks ${id}`));
  const prunedOrg = 'org-7';
  const prunedFiles = files.filter((_, i) => labelsOf(i).org === prunedOrg);
  const bytes = files.reduce((sum, file) => sum + fs.statSync(file).size, 0);
  return { size, dataDir: path.join(dir, 'data'), sharedDb: path.join(dir, 'shared.db'), ids, files, prunedOrg, prunedFiles, bytes };
}

function fail(message: string): never {
  throw new Error(message);
}

/** The cached fleet of `size` instances, built first if missing. Never written to by the benchmark. */
export async function fleetOf(size: number, log: (line: string) => void): Promise<Fleet> {
  const dir = path.join(cacheRoot, `fleet-${size}-v${dataVersion}`);
  if (fs.existsSync(path.join(dir, 'complete'))) return describe(size, dir);
  fs.rmSync(dir, { recursive: true, force: true });
  const started = performance.now();
  const scratchBase = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const scratch = fs.mkdtempSync(path.join(scratchBase, 'fleetql-bench-build-'));
  try {
    const migrations = loadMigrations(demoMigrationsDir);
    const images = await buildTemplates(path.join(scratch, 'templates'), migrations);
    const dataDir = path.join(scratch, 'data');
    const catalog = LibsqlCatalog.open(expandConfig({ dataDir, migrationsDir: demoMigrationsDir, demo: false }).catalogPath, { busyTimeoutMs: 5000 });
    const service = instanceService(dataDir, migrations, catalog);
    // Migrations are recorded in the catalog before any instance holds them, as `create` does.
    catalog.recordMigrations(migrations.migrations);
    for (let i = 0; i < size; i++) {
      await service.createFromImage(instanceId(i), labelsOf(i), images[i % images.length]!, migrations.head);
      if (i > 0 && i % 2000 === 0) log(`  built ${i}/${size} instances`);
    }
    await service.close();
    catalog.close();
    const templateFiles = images.map((image, t) => {
      const file = path.join(scratch, `template-${t}.db`);
      fs.writeFileSync(file, image);
      return file;
    });
    buildShared(path.join(scratch, 'shared.db'), templateFiles, size);
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(dataDir, path.join(dir, 'data'), { recursive: true });
    fs.copyFileSync(path.join(scratch, 'shared.db'), path.join(dir, 'shared.db'));
    fs.writeFileSync(path.join(dir, 'complete'), new Date().toISOString());
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  log(`  built the fleet of ${size} in ${((performance.now() - started) / 1000).toFixed(1)} s (cached in ${dir})`);
  return describe(size, dir);
}

/**
 * A data directory with `size` catalogued instances and no files (startup reads only the catalog),
 * written through the catalog API exactly as creates would leave it.
 */
export function catalogOnlyOf(size: number, log: (line: string) => void): string {
  const dir = path.join(cacheRoot, `catalog-${size}-v${dataVersion}`);
  if (fs.existsSync(path.join(dir, 'complete'))) return path.join(dir, 'data');
  fs.rmSync(dir, { recursive: true, force: true });
  const started = performance.now();
  const scratch = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fleetql-bench-catalog-'));
  try {
    const migrations = loadMigrations(demoMigrationsDir);
    const catalogPath = expandConfig({ dataDir: path.join(scratch, 'data'), migrationsDir: demoMigrationsDir, demo: false }).catalogPath;
    const catalog = LibsqlCatalog.open(catalogPath, { busyTimeoutMs: 5000 });
    catalog.recordMigrations(migrations.migrations);
    for (let i = 0; i < size; i++) {
      catalog.completeCreate(catalog.beginCreate(instanceId(i), labelsOf(i), {}), migrations.head);
    }
    catalog.close();
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(path.join(scratch, 'data'), path.join(dir, 'data'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'complete'), new Date().toISOString());
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  log(`  catalogued ${size} instances in ${((performance.now() - started) / 1000).toFixed(1)} s (cached in ${dir})`);
  return path.join(dir, 'data');
}

/** A private, writable copy of a fleet's data directory (for rollouts and archives); `remove` deletes it. */
export function copyOfFleet(fleet: Fleet): { dataDir: string; files: string[]; remove: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-bench-copy-'));
  fs.cpSync(fleet.dataDir, path.join(root, 'data'), { recursive: true });
  const byId = indexFiles(path.join(root, 'data', 'instances'));
  // On disk before anything is timed: a fleet at rest, as a real one is. Otherwise the first fsync
  // of each file writes out its whole copy, and the kernel's writeback of ~100 MB runs beside
  // whichever side is measured first.
  execFileSync('sync', ['--file-system', root]);
  return { dataDir: path.join(root, 'data'), files: fleet.ids.map((id) => byId.get(id)!), remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}
