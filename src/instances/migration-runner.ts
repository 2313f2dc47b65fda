import { Piscina } from 'piscina';
import type { MigrationSet } from '../migrations/index.js';
import {
  fromPortable,
  migrateFile,
  outcomeOf,
  restoreFile,
  type MigrateFileJob,
  type MigrateFileResult,
  type Outcome,
  type RestoreFileJob,
} from './file-migration.js';

/**
 * Runs the file work of migrations and rollbacks (snapshot copy, the migration's transaction, the
 * fsyncs) on worker threads, so the event loop keeps serving requests while a rollout runs; with
 * no threads, on the calling thread. The caller holds the instance's lock and keeps its other users
 * out while a job runs (see InstanceService.migrate).
 */
export class MigrationRunner {
  readonly #pool: Piscina | undefined;
  readonly #migrations: MigrationSet;

  constructor(migrations: MigrationSet, threads: number) {
    this.#migrations = migrations;
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

  async migrate(job: MigrateFileJob): Promise<MigrateFileResult> {
    return this.#settle(this.#pool ? await this.#pool.run(job, { name: 'migrate' }) : outcomeOf(() => migrateFile(job, this.#migrations)));
  }

  async restore(job: RestoreFileJob): Promise<void> {
    this.#settle(this.#pool ? await this.#pool.run(job, { name: 'restore' }) : outcomeOf(() => restoreFile(job)));
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
