// Entry of the migration worker threads (see migration-runner.ts): the file steps of a rollout,
// each on a connection of the worker's own.
import { workerData } from 'piscina';
import { makeMigrationSet, type Migration } from '../migrations/index.js';
import { migrateFile, outcomeOf, restoreFile, type MigrateFileJob, type RestoreFileJob } from './file-migration.js';

const migrations = makeMigrationSet((workerData as { migrations: Migration[] }).migrations);

/** Answers once this worker is loaded (the pool starts workers on demand). */
export function ready(): true {
  return true;
}

export function migrate(job: MigrateFileJob) {
  return outcomeOf(() => migrateFile(job, migrations));
}

export function restore(job: RestoreFileJob) {
  return outcomeOf(() => restoreFile(job));
}
