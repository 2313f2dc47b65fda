/**
 * Servers under test run as child processes, each on its own event loop, apart from the load
 * generator (autocannon in the bench process): fleetql through its real CLI (`fleetql serve`), the
 * baseline through bench/baseline-server.ts (`node --import tsx …`; tsx compiles it once at start).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { RawJob, RawPasses, RawResult } from '../raw-loop.js';
import { demoMigrationsDir, repoRoot } from './fleet.js';

export interface ServerProcess {
  url: string;
  pid: number;
  /** Milliseconds from spawn to the ready line. */
  startupMs: number;
  /** Resident set size now, in bytes (from /proc). */
  rss(): number;
  /** Open file descriptors now. */
  descriptors(): number;
  /** CPU time the process has used so far (user + system, every thread), in microseconds. */
  cpuMicros(): number;
  stop(): Promise<void>;
}

/** Kernel clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat's CPU times. */
const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
// Interrupted: take the servers down too (exit handlers do not run on a signal by default).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

/** Children run with NODE_ENV=production, as the Dockerfile runs fleetql (graphql-js skips its development checks). */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined && !name.startsWith('FLEETQL_')) env[name] = value;
  return { ...env, NODE_ENV: 'production', ...extra };
}

/**
 * fleetql runs as it is shipped (the Dockerfile's `node dist/cli/main.js`): built once per bench
 * run, so neither its startup nor its migration worker threads pay tsx compiling TypeScript.
 */
let built = false;
export function buildFleetql(log: (line: string) => void): void {
  if (built) return;
  const t0 = performance.now();
  const result = spawnSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
  built = true;
  log(`built dist/ in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function start(args: string[], env: Record<string, string>, ready: RegExp, timeoutMs = 120_000): Promise<ServerProcess> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...(args[0]!.endsWith('.ts') ? ['--import', 'tsx'] : []), ...args], { cwd: repoRoot, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => live.delete(child));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line from ${args.join(' ')}; stderr:\n${err}`)), timeoutMs);
    child.stdout!.on('data', () => {
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(() => reject(new Error(`${args.join(' ')} exited before it was ready; stderr:\n${err}`)));
  });
  const startupMs = performance.now() - t0;
  const pid = child.pid!;
  return {
    url,
    pid,
    startupMs,
    rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024,
    descriptors: () => fs.readdirSync(`/proc/${pid}/fd`).length,
    cpuMicros: () => {
      // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the command's ")".
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * `fleetql serve` over `dataDir`. The handle cache gets a budget that holds a whole 10,000-instance
 * fleet open (one descriptor each under the default rollback journal), so "warm" means warm;
 * the fleet deadline and the request deadline are raised so a cold 10,000-instance fan-out on a
 * busy machine is not cut short.
 */
export function startFleetql(dataDir: string, options: { migrationsDir?: string; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  buildFleetql(() => undefined);
  return start(
    ['dist/cli/main.js', 'serve', '--port', '0', '--no-demo', '--data', dataDir, '--migrations', options.migrationsDir ?? demoMigrationsDir],
    {
      FLEETQL_MAX_OPEN_DESCRIPTORS: '16000',
      FLEETQL_FLEET_DEADLINE_MS: '600000',
      FLEETQL_REQUEST_TIMEOUT_MS: '600000',
      FLEETQL_FLEET_INSTANCE_TIMEOUT_MS: '60000',
      FLEETQL_FLEET_MAX_COST: '10000000',
      FLEETQL_LOG_LEVEL: 'warn',
      ...options.env,
    },
    /fleetql listening on (http:\/\/\S+)\n/,
  );
}

export function startBaseline(sharedDb: string): Promise<ServerProcess> {
  return start(['bench/baseline-server.ts', sharedDb], {}, /baseline listening on (http:\/\/\S+)\n/);
}

/** Runs one raw-driver job in a fresh child process (see raw-loop.ts). */
export async function runRaw(job: RawJob): Promise<RawResult> {
  const jobFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-bench-job-')), 'job.json');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  try {
    return await new Promise<RawResult>((resolve, reject) => {
      const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/raw-loop.ts', jobFile], { cwd: repoRoot, env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
      live.add(child);
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.once('exit', (code) => {
        live.delete(child);
        if (code === 0) resolve(JSON.parse(out) as RawResult);
        else reject(new Error(`raw loop failed (${code}): ${err.slice(-2000)}`));
      });
    });
  } finally {
    fs.rmSync(path.dirname(jobFile), { recursive: true, force: true });
  }
}

export interface RawPassRunner {
  /** Runs the named pass once: its time in milliseconds and its answer. */
  pass(name: string): Promise<{ ms: number; answer: unknown }>;
  stop(): Promise<void>;
}

/**
 * The raw warm loop kept running in its own process (raw-loop.ts `--passes`): every file open, the
 * statements prepared, a pass run on demand, so each can be paired with a fleetql request.
 */
export async function startRawPasses(passes: RawPasses, timeoutMs = 300_000): Promise<RawPassRunner> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetql-bench-passes-'));
  const jobFile = path.join(dir, 'passes.json');
  fs.writeFileSync(jobFile, JSON.stringify(passes));
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/raw-loop.ts', '--passes', jobFile], { cwd: repoRoot, env: cleanEnv({}), stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
  // Replies come one line per request, in order: each waiter takes the next line.
  const waiting: Array<{ resolve: (line: string) => void; reject: (error: Error) => void }> = [];
  let ended: Error | undefined;
  readline.createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.resolve(line));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      fs.rmSync(dir, { recursive: true, force: true });
      ended = new Error(`raw passes exited (${code ?? signal}): ${err.slice(-2000)}`);
      for (const waiter of waiting.splice(0)) waiter.reject(ended);
      resolve();
    });
  });
  const nextLine = () => new Promise<string>((resolve, reject) => (ended ? reject(ended) : waiting.push({ resolve, reject })));
  const ready = nextLine();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const line = await ready;
    if (line !== 'ready') throw new Error(`raw passes said ${JSON.stringify(line)} before ready`);
  } finally {
    clearTimeout(timer);
  }
  return {
    pass: async (name) => {
      const reply = nextLine();
      child.stdin.write(`${name}\n`);
      const result = JSON.parse(await reply) as RawResult;
      return { ms: result.ms[0]!, answer: result.answer };
    },
    stop: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
