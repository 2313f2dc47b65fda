import { setImmediate as nextTurn } from 'node:timers/promises';
import { Piscina } from 'piscina';
import type { MigrationSet } from '../migrations/index.js';
import {
  fromPortable,
  migrateFile,
  outcomeOf,
  prepareSnapshots,
  restoreFile,
  type MigrateFileJob,
  type MigrateFileResult,
  type Outcome,
  type PrepareSnapshotsJob,
  type RestoreFileJob,
} from './file-migration.js';

/**
 * Runs the file work of migrations and rollbacks (the copy and its snapshot link, the migration's transaction, the
 * fsyncs) on worker threads, so the event loop keeps serving requests while a rollout runs; with
 * no threads, on the calling thread. The caller holds the instance's lock and keeps its other users
 * out while a job runs (see InstanceService.migrate).
 */
export class MigrationRunner {
  readonly #pool: Piscina | undefined;
  readonly #migrations: MigrationSet;
  /** With no threads, jobs run one at a time, each on a turn of the event loop of its own. */
  #inline: Promise<unknown> = Promise.resolve();
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(migrations: MigrationSet, threads: number) {
    this.#migrations = migrations;
    // One job more than threads waits in the pool's queue, taken by whichever thread frees first:
    // no thread idles while the event loop dispatches its next job, and no job waits behind a
    // particular (perhaps slow) one. (A job queued on each thread instead held a quick instance
    // behind a slow one.)
    this.#free = threads > 0 ? threads + 1 : 1;
    if (threads > 0) {
      // Built, the worker is the .js beside this file; under tsx, a loader that registers tsx first.
      const worker = import.meta.url.endsWith('.ts') ? './migration-worker-tsx.mjs' : './migration-worker.js';
      this.#pool = new Piscina({
        filename: new URL(worker, import.meta.url).href,
        minThreads: 0,
        maxThreads: threads,
        // Idle workers end, so a server that is not rolling out holds no thread and no connection.
        idleTimeout: 10_000,
        workerData: { migrations: migrations.migrations.map((m) => ({ ...m })) },
      });
    }
  }

  get threads(): number {
    return this.#pool?.options.maxThreads ?? 0;
  }

  /**
   * Waits for room on the threads and keeps it for `fn`'s jobs: a caller that shuts an instance's
   * users out for a job does so while the job runs or is next in line for the first free thread,
   * not while it waits for room.
   */
  async withThread<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      // A worker starting up (a module graph to load) must not count as time the instance is shut out.
      if (this.#pool !== undefined && this.#pool.threads.length < this.#pool.options.maxThreads) await this.#pool.run(null, { name: 'ready' });
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free += 1;
    }
  }

  async migrate(job: MigrateFileJob): Promise<MigrateFileResult> {
    return this.#settle(this.#pool ? await this.#pool.run(job, { name: 'migrate' }) : await this.#onThisThread(() => migrateFile(job, this.#migrations)));
  }

  /** Not a job on an instance: no thread is kept for it, it just takes its turn on one. */
  async prepareSnapshots(job: PrepareSnapshotsJob): Promise<void> {
    this.#settle(this.#pool ? await this.#pool.run(job, { name: 'prepareSnapshots' }) : await this.#onThisThread(() => prepareSnapshots(job)));
  }

  async restore(job: RestoreFileJob): Promise<void> {
    this.#settle(this.#pool ? await this.#pool.run(job, { name: 'restore' }) : await this.#onThisThread(() => restoreFile(job)));
  }

  #onThisThread<T>(fn: () => T): Promise<Outcome<T>> {
    const run = this.#inline.then(async () => {
      await nextTurn();
      return outcomeOf(fn);
    });
    this.#inline = run;
    return run;
  }

  #settle<T>(outcome: Outcome<T>): T {
    if (outcome.ok) return outcome.value;
    throw fromPortable(outcome.error);
  }

  /** Ends the workers once their current jobs are done. */
  async close(): Promise<void> {
    await this.#pool?.close();
  }
}
