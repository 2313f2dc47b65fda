/**
 * Does a rollout over a large fleet keep single-instance reads answering? Builds N instances at
 * version 1, adds a migration (ADD COLUMN + UPDATE + CREATE INDEX), then, for each number of
 * migration worker threads asked for (a copy of the same fleet each), measures p50/p99 of
 * single-instance reads over HTTP while idle and while the rollout runs, and the rollout's rate.
 *
 *   npx tsx bench/rollout-responsiveness.ts [instances=10000] [reads=400] [threads=0,1]
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expandConfig } from '../src/config/index.js';
import { createFleetqlServer, createLogger } from '../src/server/index.js';

const count = Number(process.argv[2] ?? 10_000);
const reads = Number(process.argv[3] ?? 400);
const threadCounts = (process.argv[4] ?? '0,1').split(',').map(Number);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-rollout-bench-'));
const migrationsDir = path.join(root, 'migrations');
fs.mkdirSync(migrationsDir);
fs.copyFileSync(path.resolve('test/fixtures/fleet-migrations/0001_create_items.sql'), path.join(migrationsDir, '0001_create_items.sql'));

async function serve(dataDir: string, migrationThreads = 0) {
  const config = expandConfig({ dataDir, migrationsDir, demo: false, port: 0, migrationThreads });
  const fleetql = createFleetqlServer(config, { logger: createLogger('warn') });
  const server = http.createServer(fleetql.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await fleetql.ready;
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fleetql.close();
  };
  return { fleetql, url, close };
}

async function gql(url: string, query: string): Promise<any> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  return response.json();
}

const ids = Array.from({ length: count }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
const started = performance.now();
{
  const { fleetql, close } = await serve(path.join(root, 'fleet-v1'));
  const instances = fleetql.instances();
  for (const id of ids) await instances.create(id, {});
  await close();
}
const createSeconds = (performance.now() - started) / 1000;
fs.writeFileSync(path.join(migrationsDir, '0002_add_note.sql'), "ALTER TABLE items ADD COLUMN note TEXT;\nUPDATE items SET note = s;\nCREATE INDEX items_note ON items (note);\n");
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))]!;

interface Run {
  threads: number;
  idle: number[];
  busy: number[];
  state: string;
  done: number;
  total: number;
  seconds: number;
}

async function measure(threads: number): Promise<Run> {
  const dataDir = path.join(root, `data-${threads}`);
  fs.cpSync(path.join(root, 'fleet-v1'), dataDir, { recursive: true });
  const { fleetql, url, close } = await serve(dataDir, threads);

  /** Sequential single-instance reads of random instances until `until` says stop; latencies in ms. */
  async function readLoop(until: () => boolean, max: number): Promise<number[]> {
    const latencies: number[] = [];
    while (latencies.length < max && !until()) {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      const t0 = performance.now();
      const result = await gql(url, `{ instance(id: "${id}") { items_aggregate { aggregate { count } } } }`);
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      latencies.push(performance.now() - t0);
    }
    return latencies;
  }

  // Warm a sample first so idle and busy reads are both mostly warm handle reads.
  await readLoop(() => false, 200);
  const idle = await readLoop(() => false, reads);
  const rollout = await gql(url, `mutation { start_rollout(target_version: 2, strategy: {canary: 10, batch_size: 1000, concurrency: 4}) { id } }`);
  const rolloutId = Number(rollout.data.start_rollout.id);
  const started = performance.now();
  let finished = false;
  const settled = fleetql
    .rollouts()
    .settled(rolloutId)
    .then((view) => {
      finished = true;
      return view;
    });
  const busy = await readLoop(() => finished, Number.MAX_SAFE_INTEGER);
  const view = await settled;
  const seconds = (performance.now() - started) / 1000;
  await close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  return { threads, idle, busy, state: view.state, done: view.counts.done, total: view.counts.total, seconds };
}

const runs: Run[] = [];
for (const threads of threadCounts) runs.push(await measure(threads));
fs.rmSync(root, { recursive: true, force: true });

console.log(`${count} instances created in ${createSeconds.toFixed(1)} s (${(count / createSeconds).toFixed(0)}/s)`);
console.log('| migration threads | rollout | instances/s | reads idle: n, p50, p99 ms | reads during: n, p50, p99 ms | p99 during / idle |');
console.log('|---|---|---|---|---|---|');
const cell = (values: number[]) => `${values.length}, ${percentile(values, 50).toFixed(1)}, ${percentile(values, 99).toFixed(1)}`;
for (const run of runs) {
  console.log(
    `| ${run.threads} | ${run.state} ${run.done}/${run.total} in ${run.seconds.toFixed(1)} s | ${(run.done / run.seconds).toFixed(0)} | ${cell(run.idle)} | ${cell(run.busy)} | ${(percentile(run.busy, 99) / percentile(run.idle, 99)).toFixed(2)}× |`,
  );
}
