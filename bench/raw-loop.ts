/**
 * The physical limit on this machine: the plain `libsql` driver looping over the same instance
 * files in one process, with no gateway. Run as a child of bench/run.ts (a fresh process, so no
 * handle or page of the driver is left over from another measurement); prints one JSON line.
 *
 *   node --expose-gc --import tsx bench/raw-loop.ts <job.json>
 *   node --import tsx bench/raw-loop.ts --passes <passes.json>
 *
 * Jobs: `cold` (open, query, close each file), `migrate` (the rollout's migration in one
 * transaction per file), `archive` / `restore` (read + gzip + write each file / gunzip + write).
 *
 * `--passes`: the warm loop kept running, so its passes can be paired one by one with fleetql's
 * requests (a ratio per pair, the sides a moment apart rather than minutes). Every file is opened
 * once and every pass's statements prepared; after one untimed pass of each, it prints `ready`,
 * then runs the pass named on each line of its input and prints its time and answer as one JSON
 * line. It closes its files and exits when its input ends.
 */
import Database from 'libsql';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { setImmediate as nextTurn } from 'node:timers/promises';
import zlib from 'node:zlib';
import { instanceSql } from './lib/queries.js';

export type RawJob =
  | { kind: 'cold'; files: string[]; query: keyof typeof instanceSql; rounds: number }
  /** `record`: also records the migration in the file's own table, as fleetql does (the version, name, checksum, time). */
  | { kind: 'migrate'; files: string[]; sql: string; record?: string }
  | { kind: 'archive'; files: string[]; outDir: string }
  | { kind: 'restore'; files: string[]; outDir: string };

/** Named warm passes: each runs `query` over `files` (a file in several passes is opened once). */
export type RawPasses = Record<string, { query: keyof typeof instanceSql; files: string[] }>;

export interface RawResult {
  /** Milliseconds of each timed pass. */
  ms: number[];
  answer?: unknown;
}

type Db = InstanceType<typeof Database>;
type Statement = ReturnType<Db['prepare']>;

/** Folds one file's answer into the fleet answer, as fleetql's merge does (sums; top 20 by created_at desc, instance, id). Statements are in raw mode (rows as arrays). */
function merger(query: keyof typeof instanceSql) {
  if (query === 'aggregate') {
    const total = { count: 0, cpus: 0, memory_mb: 0 };
    return {
      add: (_file: string, statement: Statement) => {
        const [count, cpus, memory] = statement.get([]) as [number, number | null, number | null];
        total.count += count;
        total.cpus += cpus ?? 0;
        total.memory_mb += memory ?? 0;
      },
      answer: () => total,
    };
  }
  let top: Array<{ file: string; id: string; created_at: string }> = [];
  const before = (a: { file: string; id: string; created_at: string }, b: typeof a) =>
    a.created_at !== b.created_at ? a.created_at > b.created_at : a.file !== b.file ? a.file < b.file : a.id < b.id;
  return {
    add: (file: string, statement: Statement) => {
      for (const [id, created_at] of statement.all([]) as Array<[string, string]>) {
        const row = { file, id, created_at };
        if (top.length === 20 && !before(row, top[19]!)) break;
        top.push(row);
        top.sort((a, b) => (before(a, b) ? -1 : 1));
        if (top.length > 20) top = top.slice(0, 20);
      }
    },
    answer: () => ({ rows: top.length, newest: top[0]?.created_at, oldest: top.at(-1)?.created_at }),
  };
}

async function releaseClosed(): Promise<void> {
  // A closed file is released only once its statements are collected (FACTS.md): let that happen between passes.
  await nextTurn();
  (globalThis as { gc?: () => void }).gc?.();
  await nextTurn();
}

export async function runRawJob(job: RawJob): Promise<RawResult> {
  const ms: number[] = [];
  if (job.kind === 'cold') {
    let answer: unknown;
    for (let round = 0; round < job.rounds; round++) {
      const merge = merger(job.query);
      const t0 = performance.now();
      for (const file of job.files) {
        const db = new Database(file);
        merge.add(file, db.prepare(instanceSql[job.query]).raw(true));
        db.close();
      }
      ms.push(performance.now() - t0);
      answer = merge.answer();
      await releaseClosed();
    }
    return { ms, answer };
  }
  if (job.kind === 'migrate') {
    const t0 = performance.now();
    for (const file of job.files) {
      const db = new Database(file);
      db.exec(`PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; BEGIN IMMEDIATE; ${job.sql}; ${job.record ?? ''}; COMMIT;`);
      db.close();
    }
    ms.push(performance.now() - t0);
    return { ms };
  }
  fs.mkdirSync(job.outDir, { recursive: true });
  const t0 = performance.now();
  job.files.forEach((file, i) => {
    if (job.kind === 'archive') fs.writeFileSync(path.join(job.outDir, `${i}.db.gz`), zlib.gzipSync(fs.readFileSync(file), { level: 6 }));
    else fs.writeFileSync(path.join(job.outDir, `${i}.db`), zlib.gunzipSync(fs.readFileSync(file)));
  });
  ms.push(performance.now() - t0);
  return { ms };
}

/** The `--passes` mode (see the top of this file). */
export async function servePasses(passes: RawPasses): Promise<void> {
  // Each handle keeps its read lock between passes, as fleetql's cached handles do (without, each
  // read takes and releases the file's lock and rereads its change counter).
  const handles = new Map<string, Db>();
  const handleOf = (file: string) => {
    let db = handles.get(file);
    if (db === undefined) {
      db = new Database(file);
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      handles.set(file, db);
    }
    return db;
  };
  // Raw mode set once: setting it on every call cost the warm loop about a fifth more (1,000 files).
  const prepared = new Map(
    Object.entries(passes).map(([name, { query, files }]) => [name, { query, statements: files.map((file) => ({ file, statement: handleOf(file).prepare(instanceSql[query]).raw(true) })) }]),
  );
  const run = (pass: NonNullable<ReturnType<typeof prepared.get>>): RawResult => {
    const merge = merger(pass.query);
    const t0 = performance.now();
    for (const { file, statement } of pass.statements) merge.add(file, statement);
    return { ms: [performance.now() - t0], answer: merge.answer() };
  };
  for (const pass of prepared.values()) run(pass);
  process.stdout.write('ready\n');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const pass = prepared.get(line.trim());
    if (pass === undefined) throw new Error(`no pass named ${JSON.stringify(line)}`);
    process.stdout.write(`${JSON.stringify(run(pass))}\n`);
  }
  for (const db of handles.values()) db.close();
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  if (process.argv[2] === '--passes') {
    await servePasses(JSON.parse(fs.readFileSync(process.argv[3]!, 'utf8')) as RawPasses);
  } else {
    const job = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as RawJob;
    const result = await runRawJob(job);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}
