// Entry of the migration worker threads (see migration-runner.ts): the file steps of a rollout,
// each on a connection of the worker's own.
import { workerData } from 'piscina';
import { makeMigrationSet, type Migration } from '../migrations/index.js';
import { descriptorTracker } from '../storage/index.js';
import {
  migrateFile,
  outcomeOf,
  prepareSnapshots as prepare,
  restoreFile,
  type MigrateFileJob,
  type PrepareSnapshotsJob,
  type RestoreFileJob,
} from './file-migration.js';

const migrations = makeMigrationSet((workerData as { migrations: Migration[] }).migrations);

/** Closed connections a worker lets wait for their release, at most (one descriptor each). */
const releaseAt = 16;

/**
 * piscina parks an idle worker in Atomics.wait, where its event loop never turns: the driver's
 * finalizers would never run, and every file the worker migrated would keep its descriptor (a
 * 20,000-instance rollout would run the process out of them). So a task gives them back itself,
 * once a few are pending: one collection and a few turns of the loop, inside the task.
 */
async function released<T>(outcome: T): Promise<T> {
  if (descriptorTracker.pending >= releaseAt) await descriptorTracker.release();
  return outcome;
}

/** Answers once this worker is loaded (the pool starts workers on demand). */
export function ready(): true {
  return true;
}

export function migrate(job: MigrateFileJob) {
  return released(outcomeOf(() => migrateFile(job, migrations)));
}

export function restore(job: RestoreFileJob) {
  return released(outcomeOf(() => restoreFile(job)));
}

export function prepareSnapshots(job: PrepareSnapshotsJob) {
  return outcomeOf(() => prepare(job));
}
