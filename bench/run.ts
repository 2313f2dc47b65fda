/**
 * What the per-instance pattern costs through fleetql, side by side with one shared database and
 * with the physical limit (the raw driver looping over the same files). Every ratio is taken in the
 * same run, sides alternating between rounds, medians reported; warm fan-outs are paired with the
 * raw loop request by request (see fleetQueries). Prints one table and writes it to
 * bench/RESULTS.md with the machine, versions and date.
 *
 *   npm run bench [-- --quick] [--sizes 1000,10000] [--only 1,2,3,4,5,6,7] [--rounds n] [--seconds n] [--no-write]
 *                 [--rollout-threads n] [--rollout-concurrency n]   (item 5 on the server's defaults unless given)
 *
 * Items: 1 single-instance reads over HTTP (autocannon), 2 fleet aggregate and top-20 cold/warm,
 * 3 aggregate pruned to 1% of the fleet by a label, 4 single-instance p99 during a fan-out,
 * 5 rollout of ADD COLUMN + CREATE INDEX, 6 archive and restore, 7 memory and startup.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { catalogOnlyOf, copyOfFleet, demoMigrationsDir, fleetOf, repoRoot, type Fleet } from './lib/fleet.js';
import { alternating, gql, median, readLoad, timed, type LoadResult } from './lib/load.js';
import { buildFleetql, startBaseline, startFleetql, startRawPasses, runRaw, type ServerProcess } from './lib/processes.js';
import { aggregateOf, fleetAggregate, fleetTop20, singleRead, top20Of } from './lib/queries.js';
import { checksumOf } from '../src/migrations/index.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    only: { type: 'string' },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    'startup-catalog': { type: 'string' },
    'rollout-size': { type: 'string' },
    'rollout-threads': { type: 'string' },
    'rollout-concurrency': { type: 'string' },
    'archive-count': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
  strict: true,
});

const quick = args.quick === true;
const settings = {
  sizes: (args.sizes ?? (quick ? '1000' : '1000,10000')).split(',').map(Number),
  only: new Set((args.only ?? '1,2,3,4,5,6,7').split(',').map(Number)),
  // Quick: one round of each item (sides not alternated), so the whole run takes about a minute.
  rounds: Number(args.rounds ?? (quick ? 1 : 3)),
  seconds: Number(args.seconds ?? (quick ? 2 : 6)),
  connections: 10,
  startupCatalog: Number(args['startup-catalog'] ?? (quick ? 20_000 : 100_000)),
  rolloutSize: Number(args['rollout-size'] ?? (quick ? 200 : 1000)),
  rolloutThreads: args['rollout-threads'],
  rolloutConcurrency: args['rollout-concurrency'],
  archiveCount: Number(args['archive-count'] ?? (quick ? 50 : 300)),
  write: args['no-write'] !== true,
};
for (const size of settings.sizes) if (!Number.isInteger(size) || size < 1) throw new Error(`bad size ${size}`);

/** Timed warm repeats per round and side (items 2 and 3). */
const warmRepeats = 9;
// A server fresh from a restart (the cold measurements need one) runs a request's path unoptimized
// for some dozens of requests. bench/warm-up.ts, fleet aggregate over 1,000 paired with the raw
// loop (median of 18 pairs): 2.16x after 1 request, 1.49x after 5, 1.47x after 20, 1.27x after 40,
// 1.35x after 80. Warm means a server that has been serving, as a server in use has: both servers
// get this many untimed requests of the question first (the raw loop is a tight loop, hot after
// its untimed pass).
const warmUpRequests = 40;

const log = (line: string) => process.stderr.write(`${line}\n`);
const startedAt = new Date();
const loadBefore = os.loadavg()[0]!;
const t0 = performance.now();

interface Line {
  item: string;
  measure: string;
  fleetql: string;
  shared: string;
  raw: string;
  ratio: string;
  target: string;
  verdict: string;
}
const lines: Line[] = [];
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(n >= 100 ? 0 : 1) : '–');
const ms = (n: number) => `${f1(n)} ms`;
const x = (n: number) => `${n.toFixed(2)}×`;

/** Records one row; `target` compares `ratio` with a bound ("≥ 0.9" or "≤ 2"). */
function add(item: string, measure: string, sides: { fleetql: string; shared?: string; raw?: string }, ratio?: { value: number; of: string; target?: ['≥' | '≤', number] }) {
  let verdict = '';
  if (ratio?.target) {
    const [op, bound] = ratio.target;
    const met = op === '≥' ? ratio.value >= bound : ratio.value <= bound;
    verdict = met ? 'met' : `missed (${op === '≥' ? `${x(ratio.value / bound)} of the bound` : `${x(ratio.value / bound)} over`})`;
  }
  const line: Line = {
    item,
    measure,
    fleetql: sides.fleetql,
    shared: sides.shared ?? '',
    raw: sides.raw ?? '',
    ratio: ratio ? `${x(ratio.value)} ${ratio.of}` : '',
    target: ratio?.target ? `${ratio.target[0]} ${ratio.target[1]}×` : '',
    verdict,
  };
  lines.push(line);
  log(`  → ${Object.values(line).filter(Boolean).join(' | ')}`);
}

function sameAnswer(what: string, answers: unknown[]): void {
  const first = JSON.stringify(answers[0]);
  for (const other of answers.slice(1)) {
    if (JSON.stringify(other) !== first) throw new Error(`${what}: the sides disagree: ${answers.map((a) => JSON.stringify(a)).join(' vs ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. single-instance reads over HTTP

/** The single-instance read of every id once, `inFlight` requests at a time. */
async function readEach(url: string, ids: readonly string[], inFlight: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < ids.length) await gql(url, singleRead, { id: ids[next++]! });
    }),
  );
}

async function singleReads(fleet: Fleet, fq: ServerProcess, base: ServerProcess): Promise<void> {
  // Five rounds at least: a median of three moved by a tenth between runs (a round at the wrong
  // moment on a shared machine), with the target a tenth from 1.
  const rounds = quick ? settings.rounds : Math.max(settings.rounds, 5);
  log(`1. single-instance reads, ${fleet.size} instances: ${rounds} rounds × ${settings.seconds} s, ${settings.connections} connections`);
  // Every handle warm first (one fleet query opens them all; the cache holds the whole fleet), as the
  // shared database's pages are: this compares the steady state, not the first touch of a tenant.
  await gql(fq.url, fleetAggregate());
  const id = fleet.ids[Math.floor(fleet.size / 2)]!;
  const [a, b] = await Promise.all([gql(fq.url, singleRead, { id }), gql(base.url, singleRead, { id })]);
  const rows = (body: any) => body.data.instance.machines.map((m: any) => [m.id, m.created_at]);
  sameAnswer('single read', [rows(a), rows(b)]);
  // Every tenant read once on both sides, not measured: each instance's handle then has the
  // single-read statement prepared, as the shared database has its one (at 10,000, random reads
  // through the first rounds would otherwise still be preparing it on half the instances).
  for (const server of [fq, base]) await readEach(server.url, fleet.ids, settings.connections);
  // Warm-up (connections, JIT) on both sides, not measured.
  await readLoad(fq.url, fleet.ids, { connections: settings.connections, seconds: 1 });
  await readLoad(base.url, fleet.ids, { connections: settings.connections, seconds: 1 });
  const results: { fleetql: LoadResult[]; shared: LoadResult[] } = { fleetql: [], shared: [] };
  // Server CPU per request (all threads, from /proc): what the throughput ratio comes from, less
  // exposed to the load generator sharing the machine.
  const cpu: { fleetql: number[]; shared: number[] } = { fleetql: [], shared: [] };
  const measured = async (side: 'fleetql' | 'shared', server: ServerProcess) => {
    const before = server.cpuMicros();
    const result = await readLoad(server.url, fleet.ids, { connections: settings.connections, seconds: settings.seconds });
    cpu[side].push((server.cpuMicros() - before) / result.requests);
    results[side].push(result);
  };
  for (let round = 0; round < rounds; round++) {
    await alternating(round, [() => measured('fleetql', fq), () => measured('shared', base)]);
  }
  const m = (side: LoadResult[], key: keyof LoadResult) => median(side.map((r) => r[key]));
  const rpsRatio = median(results.fleetql.map((r, i) => r.rps / results.shared[i]!.rps));
  const p99Ratio = median(results.fleetql.map((r, i) => r.p99 / results.shared[i]!.p99));
  add('1', `single-instance read, ${fleet.size} instances: requests/s`, { fleetql: f1(m(results.fleetql, 'rps')), shared: f1(m(results.shared, 'rps')) }, { value: rpsRatio, of: 'shared', target: ['≥', 0.9] });
  const cpuRatio = median(cpu.fleetql.map((c, i) => c / cpu.shared[i]!));
  add('1', `single-instance read, ${fleet.size} instances: server CPU per request`, { fleetql: `${f1(median(cpu.fleetql))} µs`, shared: `${f1(median(cpu.shared))} µs` }, { value: cpuRatio, of: 'shared' });
  add('1', `single-instance read, ${fleet.size} instances: p50 / p99`, { fleetql: `${ms(m(results.fleetql, 'p50'))} / ${ms(m(results.fleetql, 'p99'))}`, shared: `${ms(m(results.shared, 'p50'))} / ${ms(m(results.shared, 'p99'))}` }, { value: p99Ratio, of: 'shared (p99)', target: ['≤', 2] });
}

// ---------------------------------------------------------------------------------------------
// 2 + 3. fleet aggregate, top-20, pruned aggregate: cold and warm, vs raw loop and shared database

async function fleetQueries(fleet: Fleet, servers: { fq: ServerProcess; base: ServerProcess }): Promise<void> {
  log(`2/3. fleet queries, ${fleet.size} instances: ${settings.rounds} rounds (cold = fresh server, no handle open; warm = ${warmRepeats} repeats after ${warmUpRequests} untimed ones, each fleetql repeat paired with a pass of the raw loop)`);
  const t = {
    aggCold: [] as number[], aggWarm: [] as number[], topCold: [] as number[], topWarm: [] as number[], pruneCold: [] as number[], pruneWarm: [] as number[],
    rawAggCold: [] as number[], rawAggWarm: [] as number[], rawTopCold: [] as number[], rawTopWarm: [] as number[], rawPruneCold: [] as number[], rawPruneWarm: [] as number[],
    baseAggCold: [] as number[], baseAgg: [] as number[], baseTop: [] as number[], basePrune: [] as number[],
  };
  // fleetql's warm times and the raw passes paired with them go into their arrays in step, so a
  // ratio of the two arrays is the median of per-pair ratios.
  type Question = 'aggregate' | 'top20' | 'pruned';
  /** The first warm request of each fresh server, and the raw pass after it. */
  const fresh: Record<Question, Array<{ own: number; limit: number }>> = { aggregate: [], top20: [], pruned: [] };
  const answers: Record<string, unknown[]> = { aggregate: [], top20: [], pruned: [] };
  // The warm raw loop runs all along in its own process, so each warm fleetql request is paired
  // with a raw pass a moment later or earlier (the order alternates): measured minutes apart, the
  // two sides drifted with the machine's load (one full run's raw figure at 10,000 was 177 ms,
  // where the same job alone took 104-115 ms six times).
  const rawPasses = await startRawPasses({
    aggregate: { query: 'aggregate', files: fleet.files },
    pruned: { query: 'aggregate', files: fleet.prunedFiles },
    top20: { query: 'top20', files: fleet.files },
  });
  // Warm: untimed requests first (see warmUpRequests), an untimed pass of the raw loop, then the
  // timed repeats; the shared baseline's are not paired.
  const repeat = async (url: string, query: string, key: Question, into: number[], check: (body: any) => unknown, raw?: number[]) => {
    // The first warm request of a server just started (after its cold one) is paired too, and
    // reported beside the steady figure: what a fresh process costs.
    const first = await timed(url, query);
    answers[key]!.push(check(first.body));
    if (raw) {
      const pass = await rawPasses.pass(key);
      answers[key]!.push(pass.answer);
      fresh[key].push({ own: first.ms, limit: pass.ms });
    }
    for (let i = 1; i < warmUpRequests; i++) answers[key]!.push(check((await timed(url, query)).body));
    if (raw) answers[key]!.push((await rawPasses.pass(key)).answer);
    for (let i = 0; i < warmRepeats; i++) {
      const request = async () => {
        const { ms: elapsed, body } = await timed(url, query);
        answers[key]!.push(check(body));
        return elapsed;
      };
      const rawPass = async () => {
        const { ms: elapsed, answer } = await rawPasses.pass(key);
        answers[key]!.push(answer);
        return elapsed;
      };
      if (!raw) {
        into.push(await request());
        continue;
      }
      let own: number;
      let limit: number;
      if ((round + i) % 2 === 0) {
        own = await request();
        limit = await rawPass();
      } else {
        limit = await rawPass();
        own = await request();
      }
      into.push(own);
      raw.push(limit);
    }
  };
  const restartFleetql = async () => {
    await servers.fq.stop();
    servers.fq = await startFleetql(fleet.dataDir);
  };
  const restartBaseline = async () => {
    await servers.base.stop();
    servers.base = await startBaseline(fleet.sharedDb);
  };
  let round = 0;
  try {
    for (; round < settings.rounds; round++) {
      await alternating(round, [
        async () => {
          // A fresh server has no handle open: the pruned query first (1% cold), then the full aggregate (99% cold).
          await restartFleetql();
          let r = await timed(servers.fq.url, fleetAggregate(fleet.prunedOrg));
          t.pruneCold.push(r.ms);
          answers['pruned']!.push(aggregateOf(r.body));
          r = await timed(servers.fq.url, fleetAggregate());
          t.aggCold.push(r.ms);
          answers['aggregate']!.push(aggregateOf(r.body));
          await repeat(servers.fq.url, fleetAggregate(), 'aggregate', t.aggWarm, aggregateOf, t.rawAggWarm);
          await repeat(servers.fq.url, fleetAggregate(fleet.prunedOrg), 'pruned', t.pruneWarm, aggregateOf, t.rawPruneWarm);
          await restartFleetql();
          r = await timed(servers.fq.url, fleetTop20);
          t.topCold.push(r.ms);
          answers['top20']!.push(top20Of(r.body));
          await repeat(servers.fq.url, fleetTop20, 'top20', t.topWarm, top20Of, t.rawTopWarm);
        },
        async () => {
          for (const [query, files, cold, key] of [
            ['aggregate', fleet.files, t.rawAggCold, 'aggregate'],
            ['aggregate', fleet.prunedFiles, t.rawPruneCold, 'pruned'],
            ['top20', fleet.files, t.rawTopCold, 'top20'],
          ] as const) {
            const c = await runRaw({ kind: 'cold', files: [...files], query, rounds: 1 });
            cold.push(c.ms[0]!);
            answers[key]!.push(c.answer);
          }
        },
        async () => {
          await restartBaseline();
          const r = await timed(servers.base.url, fleetAggregate());
          t.baseAggCold.push(r.ms);
          answers['aggregate']!.push(aggregateOf(r.body));
          await repeat(servers.base.url, fleetAggregate(), 'aggregate', t.baseAgg, aggregateOf);
          await repeat(servers.base.url, fleetTop20, 'top20', t.baseTop, top20Of);
          await repeat(servers.base.url, fleetAggregate(fleet.prunedOrg), 'pruned', t.basePrune, aggregateOf);
        },
      ]);
    }
  } finally {
    await rawPasses.stop();
  }
  for (const [key, list] of Object.entries(answers)) sameAnswer(`fleet ${key}`, list);
  const ratio = (a: number[], b: number[]) => median(a.map((v, i) => v / b[i]!));
  const n = fleet.size;
  if (settings.only.has(2)) {
    add('2', `fleet aggregate, ${n} instances, warm`, { fleetql: ms(median(t.aggWarm)), shared: ms(median(t.baseAgg)), raw: ms(median(t.rawAggWarm)) }, { value: ratio(t.aggWarm, t.rawAggWarm), of: 'raw (paired)', target: ['≤', 1.5] });
    const first = fresh.aggregate;
    add('2', `fleet aggregate, ${n} instances, warm handles, the first warm request of a server just started`, { fleetql: ms(median(first.map((f) => f.own))), raw: ms(median(first.map((f) => f.limit))) }, { value: median(first.map((f) => f.own / f.limit)), of: 'raw (paired)' });
    add('2', `fleet aggregate, ${n} instances, cold`, { fleetql: ms(median(t.aggCold)), shared: `${ms(median(t.baseAggCold))} (first query)`, raw: ms(median(t.rawAggCold)) }, { value: ratio(t.aggCold, t.rawAggCold), of: 'raw', target: ['≤', 2] });
    add('2', `fleet aggregate, ${n} instances, warm vs shared`, { fleetql: ms(median(t.aggWarm)), shared: ms(median(t.baseAgg)) }, { value: ratio(t.aggWarm, t.baseAgg), of: 'shared' });
    add('2', `fleet top-20, ${n} instances, warm`, { fleetql: ms(median(t.topWarm)), shared: ms(median(t.baseTop)), raw: ms(median(t.rawTopWarm)) }, { value: ratio(t.topWarm, t.rawTopWarm), of: 'raw (paired)', target: ['≤', 1.5] });
    add('2', `fleet top-20, ${n} instances, cold`, { fleetql: ms(median(t.topCold)), raw: ms(median(t.rawTopCold)) }, { value: ratio(t.topCold, t.rawTopCold), of: 'raw', target: ['≤', 2] });
  }
  if (settings.only.has(3)) {
    const pruned = fleet.prunedFiles.length;
    add('3', `aggregate pruned to 1% (${pruned} of ${n}), warm`, { fleetql: ms(median(t.pruneWarm)), shared: ms(median(t.basePrune)), raw: ms(median(t.rawPruneWarm)) }, { value: ratio(t.pruneWarm, t.basePrune), of: 'shared', target: ['≤', 3] });
    add('3', `aggregate pruned to 1% (${pruned} of ${n}), cold`, { fleetql: ms(median(t.pruneCold)), shared: ms(median(t.basePrune)), raw: ms(median(t.rawPruneCold)) }, { value: ratio(t.pruneCold, t.basePrune), of: 'shared' });
  }
}

// ---------------------------------------------------------------------------------------------
// 4. single-instance p99 while a fleet query fans out over the whole fleet

async function readsDuringFanOut(fleet: Fleet, fq: ServerProcess): Promise<void> {
  const rate = 100;
  log(`4. single-instance p99 during a ${fleet.size}-instance fan-out: ${settings.rounds} rounds × ${settings.seconds} s at ${rate} req/s`);
  await gql(fq.url, fleetAggregate()); // every handle warm, as the idle reads are
  const idle: LoadResult[] = [];
  const busy: LoadResult[] = [];
  let fanOuts = 0;
  for (let round = 0; round < settings.rounds; round++) {
    await alternating(round, [
      async () => void idle.push(await readLoad(fq.url, fleet.ids, { connections: 4, seconds: settings.seconds, rate })),
      async () => {
        let running = true;
        const loop = (async () => {
          while (running) {
            await gql(fq.url, fleetAggregate());
            fanOuts += 1;
          }
        })();
        busy.push(await readLoad(fq.url, fleet.ids, { connections: 4, seconds: settings.seconds, rate }));
        running = false;
        await loop;
      },
    ]);
  }
  const ratio = median(busy.map((b, i) => b.p99 / idle[i]!.p99));
  add('4', `single-instance p50 / p99 idle vs during ${fleet.size}-instance fan-outs (${fanOuts} ran)`, {
    fleetql: `${ms(median(busy.map((b) => b.p50)))} / ${ms(median(busy.map((b) => b.p99)))} during; ${ms(median(idle.map((b) => b.p50)))} / ${ms(median(idle.map((b) => b.p99)))} idle`,
  }, { value: ratio, of: 'idle (p99)', target: ['≤', 3] });
}

// ---------------------------------------------------------------------------------------------
// 5. rollout of ADD COLUMN + CREATE INDEX

const migrationSql = 'ALTER TABLE machines ADD COLUMN note TEXT;\nCREATE INDEX machines_note ON machines (note);\n';

async function rollout(fleet: Fleet): Promise<void> {
  // The disk's speed drifts within minutes on these machines (the raw loop alone moved between 190
  // and 500 instances/s from one run to the next, faster early in a run of fsyncs), so every other
  // side is bracketed by raw runs: its ratio is to the mean of the raw run just before and just
  // after it. Medians of three rounds.
  const rounds = quick ? 1 : 3;
  log(`5. rollout over ${fleet.size} instances: ${rounds} round(s)`);
  const migrationsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-bench-migrations-'));
  for (const file of fs.readdirSync(demoMigrationsDir)) fs.copyFileSync(path.join(demoMigrationsDir, file), path.join(migrationsDir, file));
  fs.writeFileSync(path.join(migrationsDir, '0003_add_note.sql'), migrationSql);
  // The raw loop doing fleetql's bookkeeping too: each file records the migration it applied (the
  // row fleetql's crash recovery and version checks read), in the same transaction.
  const migrationRecord = `INSERT INTO _fleetql_migrations (version, name, checksum, applied_at) VALUES (3, '0003_add_note', '${checksumOf(migrationSql)}', '${new Date().toISOString()}')`;
  /** Instances per second of one side, on a fresh copy of the fleet (on disk before the timing starts). */
  const fleetqlSide = (snapshots: boolean) => async (): Promise<number> => {
    const copy = copyOfFleet(fleet);
    const server = await startFleetql(copy.dataDir, { migrationsDir, env: settings.rolloutThreads === undefined ? {} : { FLEETQL_MIGRATION_THREADS: settings.rolloutThreads } });
    try {
      const started = performance.now();
      const options = [...(settings.rolloutConcurrency === undefined ? [] : [`concurrency: ${Number(settings.rolloutConcurrency)}`]), ...(snapshots ? [] : ['snapshots: false'])];
      const strategy = options.length === 0 ? '' : `, strategy: { ${options.join(', ')} }`;
      const body = await gql(server.url, `mutation { start_rollout(target_version: 3${strategy}) { id } }`);
      const id = body.data.start_rollout.id as string;
      for (;;) {
        const view = (await gql(server.url, `{ rollout(id: "${id}") { state counts { total done failed } } }`)).data.rollout;
        if (view.state === 'COMPLETED') {
          if (view.counts.done !== fleet.size) throw new Error(`rollout moved ${view.counts.done} of ${fleet.size}`);
          break;
        }
        if (view.state !== 'RUNNING' && view.state !== 'PENDING') throw new Error(`rollout ended ${view.state}: ${JSON.stringify(view)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return fleet.size / ((performance.now() - started) / 1000);
    } finally {
      await server.stop();
      copy.remove();
    }
  };
  const rawSide = (record?: string) => async (): Promise<number> => {
    const copy = copyOfFleet(fleet);
    try {
      const result = await runRaw({ kind: 'migrate', files: copy.files, sql: migrationSql, ...(record === undefined ? {} : { record }) });
      return fleet.size / (result.ms[0]! / 1000);
    } finally {
      copy.remove();
    }
  };
  const raw = rawSide();
  const rawRates: number[] = [];
  /** Per side, its rates and its ratios to the raw runs around it. */
  const sides = { snapshots: fleetqlSide(true), unsnapped: fleetqlSide(false), recording: rawSide(migrationRecord) };
  const rates: Record<keyof typeof sides, number[]> = { snapshots: [], unsnapped: [], recording: [] };
  const ratios: Record<keyof typeof sides, number[]> = { snapshots: [], unsnapped: [], recording: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      const order: Array<keyof typeof sides> = round % 2 === 0 ? ['snapshots', 'unsnapped', 'recording'] : ['unsnapped', 'snapshots', 'recording'];
      let before = await raw();
      rawRates.push(before);
      for (const name of order) {
        const rate = await sides[name]();
        const after = await raw();
        rawRates.push(after);
        rates[name].push(rate);
        ratios[name].push(rate / ((before + after) / 2));
        before = after;
      }
      log(`  round ${round + 1}: raw ${rawRates.slice(-4).map(f1).join(', ')}; ${order.map((name) => `${name} ${f1(rates[name].at(-1)!)} (${ratios[name].at(-1)!.toFixed(2)}×)`).join(', ')}`);
    }
  } finally {
    fs.rmSync(migrationsDir, { recursive: true, force: true });
  }
  add('5', `rollout ADD COLUMN + CREATE INDEX over ${fleet.size} instances (instances/s)`, { fleetql: f1(median(rates.snapshots)), raw: f1(median(rawRates)) }, {
    value: median(ratios.snapshots),
    of: 'raw',
    target: ['≥', 0.7],
  });
  add('5', `the same without snapshots (strategy snapshots: false, no rollback: the raw loop's guarantee)`, { fleetql: f1(median(rates.unsnapped)), raw: f1(median(rawRates)) }, {
    value: median(ratios.unsnapped),
    of: 'raw',
  });
  // Both measured against the plain raw runs around them: fleetql's ratio over the recording loop's.
  add('5', `the same with snapshots, vs a raw loop that also records the migration in each file (as fleetql does)`, { fleetql: f1(median(rates.snapshots)), raw: f1(median(rates.recording)) }, {
    value: median(ratios.snapshots.map((ratio, i) => ratio / ratios.recording[i]!)),
    of: 'raw',
  });
}

// ---------------------------------------------------------------------------------------------
// 6. archive and restore throughput

async function archiveRestore(fleet: Fleet): Promise<void> {
  const count = Math.min(settings.archiveCount, fleet.size);
  const inFlight = 4;
  log(`6. archive and restore of ${count} instances, ${inFlight} in flight`);
  const copy = copyOfFleet(fleet);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-bench-archive-'));
  const files = copy.files.slice(0, count);
  const mb = files.reduce((sum, file) => sum + fs.statSync(file).size, 0) / 1e6;
  const pool = async (work: Array<() => Promise<void>>) => {
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < work.length) await work[next++]!();
    }));
  };
  try {
    const server = await startFleetql(copy.dataDir);
    let archiveMs: number;
    let restoreMs: number;
    try {
      const archiveIds: string[] = new Array(count);
      let t = performance.now();
      await pool(fleet.ids.slice(0, count).map((id, i) => async () => {
        archiveIds[i] = (await gql(server.url, `mutation { archive_instance(id: "${id}") { id } }`)).data.archive_instance.id;
      }));
      archiveMs = performance.now() - t;
      t = performance.now();
      await pool(archiveIds.map((archiveId, i) => async () => {
        await gql(server.url, `mutation { restore_instance(archive_id: "${archiveId}", as_id: "restored-${i}") { id } }`);
      }));
      restoreMs = performance.now() - t;
    } finally {
      await server.stop();
    }
    const rawArchive = await runRaw({ kind: 'archive', files, outDir: path.join(scratch, 'gz') });
    const gzFiles = files.map((_, i) => path.join(scratch, 'gz', `${i}.db.gz`));
    const rawRestore = await runRaw({ kind: 'restore', files: gzFiles, outDir: path.join(scratch, 'db') });
    const rate = (elapsed: number) => mb / (elapsed / 1000);
    add('6', `archive ${count} instances (${mb.toFixed(1)} MB), MB/s`, { fleetql: f1(rate(archiveMs)), raw: `${f1(rate(rawArchive.ms[0]!))} (read + gzip + write)` }, { value: rate(archiveMs) / rate(rawArchive.ms[0]!), of: 'raw' });
    add('6', `restore ${count} instances, MB/s`, { fleetql: f1(rate(restoreMs)), raw: `${f1(rate(rawRestore.ms[0]!))} (read + gunzip + write)` }, { value: rate(restoreMs) / rate(rawRestore.ms[0]!), of: 'raw' });
  } finally {
    copy.remove();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// 7. memory with a full handle cache; startup with a large catalog

async function memory(fleet: Fleet, fq: ServerProcess, base: ServerProcess): Promise<void> {
  log(`7. memory with ${fleet.size} instances and a full handle cache`);
  await gql(fq.url, fleetAggregate());
  await gql(fq.url, fleetTop20);
  await gql(base.url, fleetAggregate());
  add('7', `resident memory, ${fleet.size} instances, every handle open (${fq.descriptors()} descriptors)`, { fleetql: `${(fq.rss() / 2 ** 20).toFixed(0)} MiB`, shared: `${(base.rss() / 2 ** 20).toFixed(0)} MiB` });
}

async function startup(): Promise<void> {
  const size = settings.startupCatalog;
  log(`7. startup with ${size} catalogued instances`);
  const dataDir = catalogOnlyOf(size, log);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-bench-empty-'));
  const big: number[] = [];
  const none: number[] = [];
  try {
    for (let round = 0; round < settings.rounds; round++) {
      await alternating(round, [
        async () => {
          const server = await startFleetql(dataDir);
          big.push(server.startupMs);
          await server.stop();
        },
        async () => {
          const server = await startFleetql(path.join(empty, String(round)));
          none.push(server.startupMs);
          await server.stop();
        },
      ]);
    }
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
  add('7', `startup to ready, ${size} catalogued instances (process start included)`, { fleetql: `${ms(median(big))} (empty data dir: ${ms(median(none))})` }, { value: median(big) / median(none), of: 'empty' });
}

// ---------------------------------------------------------------------------------------------

function versionOf(pkg: string): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

function table(): string {
  const header = '| # | measure | fleetql | shared database | raw driver loop | ratio | target | |';
  const rows = lines.map((l) => `| ${l.item} | ${l.measure} | ${l.fleetql} | ${l.shared} | ${l.raw} | ${l.ratio} | ${l.target} | ${l.verdict} |`);
  return [header, '|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.type()} ${os.release()}, ${os.cpus().length} × ${cpu}, Node ${process.versions.node}, libsql ${versionOf('libsql')}, graphql-yoga ${versionOf('graphql-yoga')}, graphql ${versionOf('graphql')}, autocannon ${versionOf('autocannon')}`;
}

const sectionStart = '<!-- bench/run.ts: start -->';
const sectionEnd = '<!-- bench/run.ts: end -->';

function writeResults(report: string): void {
  const file = path.join(repoRoot, 'bench/RESULTS.md');
  const current = fs.readFileSync(file, 'utf8');
  const section = `${sectionStart}\n${report}\n${sectionEnd}`;
  const start = current.indexOf(sectionStart);
  const end = current.indexOf(sectionEnd);
  let next: string;
  if (start >= 0 && end > start) next = current.slice(0, start) + section + current.slice(end + sectionEnd.length);
  else {
    // On top, right after the file's introduction (its first "## " heading).
    const at = current.indexOf('\n## ');
    next = at < 0 ? `${current}\n${section}\n` : `${current.slice(0, at + 1)}${section}\n\n${current.slice(at + 1)}`;
  }
  fs.writeFileSync(file, next);
}

async function main(): Promise<void> {
  buildFleetql(log);
  const largest = Math.max(...settings.sizes);
  for (const size of settings.sizes) {
    log(`fleet of ${size} instances`);
    const fleet = await fleetOf(size, log);
    const needsServers = [1, 2, 3].some((i) => settings.only.has(i)) || (size === largest && [4, 7].some((i) => settings.only.has(i)));
    if (!needsServers) continue;
    const servers = { fq: await startFleetql(fleet.dataDir), base: await startBaseline(fleet.sharedDb) };
    try {
      if (settings.only.has(1)) await singleReads(fleet, servers.fq, servers.base);
      if (settings.only.has(2) || settings.only.has(3)) await fleetQueries(fleet, servers);
      if (size === largest && settings.only.has(4)) await readsDuringFanOut(fleet, servers.fq);
      if (size === largest && settings.only.has(7)) await memory(fleet, servers.fq, servers.base);
    } finally {
      await servers.fq.stop();
      await servers.base.stop();
    }
  }
  if (settings.only.has(5) || settings.only.has(6)) {
    const small = await fleetOf(settings.rolloutSize, log);
    if (settings.only.has(5)) await rollout(small);
    if (settings.only.has(6)) await archiveRestore(small);
  }
  if (settings.only.has(7)) await startup();

  const seconds = (performance.now() - t0) / 1000;
  const flags = process.argv.slice(2).join(' ');
  const command = `npm run bench${flags ? ` -- ${flags}` : ''}`;
  const report = [
    `## fleetql vs one shared database vs the raw driver (${startedAt.toISOString().slice(0, 10)})`,
    '',
    `\`${command}\` — ${machine()}. Load average ${loadBefore.toFixed(2)} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end; ${seconds.toFixed(0)} s in all; started ${startedAt.toISOString()}.`,
    `Medians of ${settings.rounds} rounds (item 1: ${quick ? settings.rounds : Math.max(settings.rounds, 5)}), sides alternating (item 5: each side between two raw runs, its ratio to their mean); ratios are medians of per-round ratios, except item 2's warm ratios to the raw loop: each timed fleetql request (${warmRepeats} a round, after ${warmUpRequests} untimed ones) is paired with a pass of the raw loop kept running in its own process, and the ratio is the median over every pair. Servers are child processes (fleetql through \`fleetql serve\`, the baseline through bench/baseline-server.ts), autocannon runs in the bench process; ${settings.connections} connections for throughput, 4 connections at a fixed 100 req/s for item 4.`,
    '',
    table(),
  ].join('\n');
  process.stdout.write(`\n${report}\n`);
  if (settings.write) {
    writeResults(report);
    log('written to bench/RESULTS.md');
  }
}

await main();
