/**
 * Where a rollout's time goes per instance, without the server: the raw migration (as raw-loop.ts
 * runs it), fleetql's file step without and with its durable pre-migration snapshot, the snapshot
 * alone, the file step on 1, 2 and 4 migration threads with that many jobs in flight, and whole
 * rollouts through RolloutService in this process (no HTTP) for each `--rollouts threads:concurrency`
 * pair, also from another checkout of fleetql (`--compare dir`, say the commit before a change).
 * Each variant runs on a fresh copy of the same cached fleet, variants interleaved across rounds;
 * CPU is the whole process's (user + system, worker threads included) per instance.
 *
 *   npx tsx bench/rollout-costs.ts [--size 300] [--rounds 3] [--only <parts of variant names, comma-separated>]
 *                                  [--rollouts 1:4,2:4] [--compare ../other-checkout]
 */
import Database from 'libsql';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { migrateFile } from '../src/instances/file-migration.js';
import { MigrationRunner } from '../src/instances/migration-runner.js';
import { loadMigrations } from '../src/migrations/index.js';
import { copyFileDurably } from '../src/storage/index.js';
import { expandConfig } from '../src/config/index.js';
import * as here from '../src/server/index.js';
import { copyOfFleet, demoMigrationsDir, fleetOf } from './lib/fleet.js';
import { median } from './lib/load.js';

const { values: args } = parseArgs({ options: { size: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, only: { type: 'string' }, rollouts: { type: 'string', default: '1:4,2:4' }, compare: { type: 'string' } } });
const size = Number(args.size);
const rounds = Number(args.rounds);
const migrationSql = 'ALTER TABLE machines ADD COLUMN note TEXT;\nCREATE INDEX machines_note ON machines (note);\n';

const migrationsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-costs-migrations-'));
for (const file of fs.readdirSync(demoMigrationsDir)) fs.copyFileSync(path.join(demoMigrationsDir, file), path.join(migrationsDir, file));
fs.writeFileSync(path.join(migrationsDir, '0003_add_note.sql'), migrationSql);
const migrations = loadMigrations(migrationsDir);
const fleet = await fleetOf(size, (line) => process.stderr.write(`${line}\n`));

/** A variant may time only part of its work (a rollout, not the server's start and stop). */
type Variant = (files: string[], snapshots: string) => Promise<Timing | void> | void;
interface Timing {
  ms: number;
  cpuMicros: number;
}
// As a rollout runs it: the catalog's version (2) checked inside the transaction, no statement prepared.
const job = (file: string, snapshot?: string) => ({ file, target: 3, expected: 2, snapshot, journalMode: 'delete' as const, busyTimeoutMs: 5000 });

async function onThreads(threads: number, files: string[], snapshots: string): Promise<void> {
  const runner = new MigrationRunner(migrations, threads);
  await runner.withThread(async () => undefined); // start a worker outside the timing
  let next = 0;
  const t = Math.max(1, threads);
  await Promise.all(
    Array.from({ length: t }, async () => {
      while (next < files.length) {
        const i = next++;
        await runner.withThread(() => runner.migrate(job(files[i]!, path.join(snapshots, `${i}.db`))));
      }
    }),
  );
  await runner.close();
}

const variants: Record<string, Variant> = {
  'raw loop (BEGIN IMMEDIATE; migration; COMMIT)': (files) => {
    for (const file of files) {
      const db = new Database(file);
      db.exec(`PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; BEGIN IMMEDIATE; ${migrationSql}; COMMIT;`);
      db.close();
    }
  },
  'migrateFile, no snapshot': (files) => {
    for (const file of files) migrateFile(job(file), migrations);
  },
  'snapshot alone (copyFileDurably)': (files, snapshots) => {
    files.forEach((file, i) => copyFileDurably(file, path.join(snapshots, `${i}.db`)));
  },
  'migrateFile with snapshot, this thread': (files, snapshots) => {
    files.forEach((file, i) => migrateFile(job(file, path.join(snapshots, `${i}.db`)), migrations));
  },
  'with snapshot, 1 thread': (files, snapshots) => onThreads(1, files, snapshots),
  'with snapshot, 2 threads, 2 in flight': (files, snapshots) => onThreads(2, files, snapshots),
  'with snapshot, 4 threads, 4 in flight': (files, snapshots) => onThreads(4, files, snapshots),
};

type ServerModule = typeof here;
async function rolloutIn(server: ServerModule, threads: number, concurrency: number, dataDir: string): Promise<Timing> {
  const config = expandConfig({ dataDir, migrationsDir, demo: false, port: 0, migrationThreads: threads });
  const fleetql = server.createFleetqlServer(config, { logger: server.createLogger('warn') });
  await fleetql.ready;
  const rollouts = fleetql.rollouts();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { id } = rollouts.start(3, null, { concurrency });
  const view = await rollouts.settled(id);
  const cpu = process.cpuUsage(cpu0);
  const timing = { ms: performance.now() - t0, cpuMicros: cpu.user + cpu.system };
  await fleetql.close();
  if (view.state !== 'COMPLETED' || view.counts.done !== size) throw new Error(`rollout ended ${view.state}: ${JSON.stringify(view.counts)}`);
  return timing;
}
const checkouts: Array<[string, ServerModule]> = [['', here]];
if (args.compare !== undefined) checkouts.push([`${path.basename(path.resolve(args.compare))}: `, (await import(path.resolve(args.compare, 'src/server/index.ts'))) as ServerModule]);
for (const pair of args.rollouts.split(',').filter((p) => p.length > 0)) {
  const [threads, concurrency] = pair.split(':').map(Number) as [number, number];
  for (const [prefix, module] of checkouts) {
    variants[`${prefix}RolloutService, ${threads} thread(s), concurrency ${concurrency}`] = (_files, snapshots) => rolloutIn(module, threads, concurrency, path.dirname(path.dirname(snapshots)));
  }
}

const perInstance = new Map<string, number[]>();
const cpuPerInstance = new Map<string, number[]>();
for (let round = 0; round < rounds; round++) {
  const names = Object.keys(variants).filter((name) => args.only === undefined || args.only.split(',').some((part) => name.includes(part)));
  if (round % 2 === 1) names.reverse();
  for (const name of names) {
    const copy = copyOfFleet(fleet);
    const snapshots = path.join(copy.dataDir, 'snapshots', 'bench');
    fs.mkdirSync(snapshots, { recursive: true });
    try {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const own = await variants[name]!(copy.files, snapshots);
      const whole = process.cpuUsage(cpu0);
      const timing = own ?? { ms: performance.now() - t0, cpuMicros: whole.user + whole.system };
      const us = (timing.ms * 1000) / copy.files.length;
      perInstance.set(name, [...(perInstance.get(name) ?? []), us]);
      cpuPerInstance.set(name, [...(cpuPerInstance.get(name) ?? []), timing.cpuMicros / copy.files.length]);
      process.stderr.write(`round ${round} ${name}: ${us.toFixed(0)} µs, load ${os.loadavg()[0]!.toFixed(2)}\n`);
    } finally {
      copy.remove();
    }
  }
}
fs.rmSync(migrationsDir, { recursive: true, force: true });

console.log(`${size} instances, ${rounds} rounds, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('| variant | µs per instance (median) | instances/s | CPU µs per instance | rounds (µs) |\n|---|---|---|---|---|');
for (const [name, us] of perInstance) {
  console.log(`| ${name} | ${median(us).toFixed(0)} | ${(1e6 / median(us)).toFixed(0)} | ${median(cpuPerInstance.get(name)!).toFixed(0)} | ${us.map((u) => u.toFixed(0)).join(', ')} |`);
}
