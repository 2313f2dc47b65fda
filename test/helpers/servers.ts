import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expandConfig, type FleetqlOptions } from '../../src/config/index.js';
import { createFleetqlServer, createLogger, type FleetqlServer, type Logger, type LogLevel } from '../../src/server/index.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const demoMigrations = path.join(repoRoot, 'migrations');

/**
 * An instance file's path relative to a data directory's `instances/`, derived here as
 * InstanceLayout documents it (not by calling it), so a change of the on-disk layout fails tests.
 */
export function relativeFileOf(id: string): string {
  const hash = createHash('sha256').update(id).digest('hex');
  return path.join(hash.slice(0, 2), hash.slice(2, 4), `${id}.db`);
}

/** An instance file's path under `dataDir` (see relativeFileOf). */
export function instanceFileOf(dataDir: string, id: string): string {
  return path.join(dataDir, 'instances', relativeFileOf(id));
}

/** Anything with an async dispose step; tests register these with `t.after`. */
interface TestContextLike {
  after(fn: () => unknown): void;
}

/** A fresh temporary directory, removed when the test ends. */
export function tempDir(t: TestContextLike, prefix = 'fleetql-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, any> }>;
  headers: Headers;
}

/** POSTs one GraphQL request as a client would, and returns the parsed body with the status. */
export async function graphql<T = Record<string, any>>(url: string, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as Omit<GraphQLResponse<T>, 'status' | 'headers'>;
  return { ...body, status: response.status, headers: response.headers };
}

export interface InProcessServer {
  url: string;
  origin: string;
  dataDir: string;
  fleetql: FleetqlServer;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

/**
 * The real fleetql handler on a real HTTP server on port 0, over a temporary data directory
 * (no demo unless asked). Stopped and removed when the test ends.
 */
export async function startServer(t: TestContextLike, options: FleetqlOptions = {}, extra: { logger?: Logger } = {}): Promise<InProcessServer> {
  const dataDir = options.dataDir ?? tempDir(t);
  const config = expandConfig({ mode: 'development', migrationsDir: demoMigrations, demo: false, ...options, dataDir, port: 0 });
  const fleetql = createFleetqlServer(config, { logger: extra.logger ?? createLogger((process.env['FLEETQL_TEST_LOG'] as LogLevel | undefined) ?? 'silent') });
  const server = http.createServer(fleetql.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fleetql.close();
  };
  t.after(close);
  await fleetql.ready;
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/graphql`;
  return { url, origin, dataDir, fleetql, gql: (query, variables) => graphql(url, query, variables), close };
}

export interface SpawnedServer {
  url: string;
  origin: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code and signal once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>>;
}

export interface SpawnOptions {
  args?: string[];
  /**
   * Add `--port 0` and FLEETQL_MIGRATIONS=<demo migrations> (default true). Off, the process gets
   * exactly the given flags and variables.
   */
  defaults?: boolean;
  env?: Record<string, string>;
  /** Run under `ulimit -n` of this value. */
  maxFiles?: number;
  /** How long to wait for the ready line. */
  readyTimeoutMs?: number;
}

const tsxImport = ['--import', 'tsx'];

/** The test runner's environment without FLEETQL_* variables, so a developer's shell cannot leak into a test. */
export function runnerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('FLEETQL_')) env[name] = value;
  }
  return env;
}

/** The real CLI, `fleetql serve`, as a child process; killed when the test ends if still running. */
export async function spawnServer(t: TestContextLike, options: SpawnOptions = {}): Promise<SpawnedServer> {
  const defaults = options.defaults ?? true;
  const nodeArgs = [...tsxImport, path.join(repoRoot, 'src/cli/main.ts'), 'serve', ...(defaults ? ['--port', '0'] : []), ...(options.args ?? [])];
  const env = { ...runnerEnv(), ...(defaults ? { FLEETQL_MIGRATIONS: demoMigrations, FLEETQL_MODE: 'development' } : {}), ...options.env };
  const child =
    options.maxFiles === undefined
      ? spawn(process.execPath, nodeArgs, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/bin/sh', ['-c', `ulimit -n ${options.maxFiles} && exec "$0" "$@"`, process.execPath, ...nodeArgs], {
          cwd: repoRoot,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within ${options.readyTimeoutMs ?? 30_000} ms; stderr:\n${err}`)), options.readyTimeoutMs ?? 30_000);
    const onData = () => {
      const match = /fleetql listening on (http:\/\/\S+)\n/.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`fleetql exited (code ${code}, signal ${signal}) before it was ready; stderr:\n${err}`));
    });
  });
  const origin = new URL(url).origin;
  return { url, origin, child, stdout: () => out, stderr: () => err, exited, gql: (query, variables) => graphql(url, query, variables) };
}

/** Runs the CLI to completion (for commands that exit, and servers that fail to start). */
export function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...tsxImport, path.join(repoRoot, 'src/cli/main.ts'), ...args], {
      cwd: repoRoot,
      env: { ...runnerEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Every file below `dir`, relative, sorted (to compare what is on disk). */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}
