import fs from 'node:fs';
import path from 'node:path';
import { FleetqlError, isFleetqlError } from '../errors.js';
import { crashPoint } from './crash-points.js';
import { currentVersion, migrateTo, VersionMismatch, type MigrationSet } from '../migrations/index.js';
import {
  cannotLink,
  copyFileDurably,
  copyOverDurably,
  createFilesDurably,
  fsyncPath,
  linkDurably,
  linkFilesDurably,
  placeDurably,
  removeFileAndSidecars,
  sameFile,
  SqliteDatabase,
  StorageError,
  type JournalMode,
} from '../storage/index.js';

/**
 * The file work of a rollout, on a connection of its own: it runs on a worker thread (see
 * migration-runner.ts) while the caller holds the instance's lock and keeps its users out.
 */
export interface MigrateFileJob {
  file: string;
  target: number;
  /**
   * The version the catalog has for the instance: checked inside the migration's transaction
   * rather than read first (see `moveToTarget`); the file's own version wins when they differ.
   */
  expected?: number | undefined;
  /** Where to keep the file as it was before migrating it (for a rollback). */
  snapshot?: string | undefined;
  /**
   * The snapshot's directory entry was made ahead and synced (PrepareSnapshotsJob): with the
   * rollback journal, a link to the file; under WAL, an empty file to copy over.
   */
  snapshotPrepared?: boolean | undefined;
  journalMode: JournalMode;
  busyTimeoutMs: number;
}

export interface MigrateFileResult {
  from: number;
  to: number;
  /** See `changeCounterOf`. */
  changeCounter: number | null;
}

export interface RestoreFileJob {
  snapshot: string;
  file: string;
}

/**
 * The snapshot entries of a batch of a rollout's instances, made ahead with one directory fsync:
 * with `sources`, a hard link to each instance's file (rollback journal, see `migrateBySwap`);
 * without, an empty file to copy over as each migrates (WAL).
 */
export interface PrepareSnapshotsJob {
  dir: string;
  names: string[];
  sources?: string[] | undefined;
}

export function prepareSnapshots(job: PrepareSnapshotsJob): void {
  const sources = job.sources;
  if (sources === undefined) createFilesDurably(job.dir, job.names);
  else linkFilesDurably(job.dir, job.names.map((name, i) => ({ name, source: sources[i]! })));
}

/** Where a file is migrated before it replaces the live one (see `migrateBySwap`). */
export function migratingFileOf(file: string): string {
  return `${file}.migrating`;
}

/**
 * Without a snapshot, a rollback-journal file up to this size is migrated as a copy that replaces
 * it too: copying and syncing a small file costs no more than the journal's fsyncs of a migration
 * in place (1,000 files of 57 KB: 278–331 instances/s swapped, 250–324 in place, on 2 threads), and
 * rollouts with and without snapshots take the same path. A larger file is migrated in place, where
 * only the pages that change are written. The bound is a choice, not a measured break-even.
 */
const swapWithoutSnapshotUpTo = 1 << 20;

/**
 * Moves the file to `target` in one transaction. The version is the file's own: a file already
 * there (a rollout resumed after a crash) is left alone. With the rollback journal, a copy is
 * migrated and replaces the file (`migrateBySwap`) when a snapshot is kept or the file is small;
 * otherwise the file is migrated where it is, a WAL file's snapshot copied first.
 */
export function migrateFile(job: MigrateFileJob, migrations: MigrationSet): MigrateFileResult {
  if (job.journalMode !== 'wal' && (job.snapshot !== undefined || (fs.statSync(job.file, { throwIfNoEntry: false })?.size ?? Infinity) <= swapWithoutSnapshotUpTo)) {
    return migrateBySwap(job, job.snapshot, migrations);
  }
  const db = SqliteDatabase.open(job.file, {
    journalMode: job.journalMode,
    busyTimeoutMs: job.busyTimeoutMs,
    synchronous: job.journalMode === 'wal' ? 'normal' : 'full',
  });
  const snapshot = job.snapshot;
  try {
    // Durable (data and directory entry) before the migration commits: once it commits, a crash
    // before the catalog records it leaves an instance that resume records as done, and only this
    // copy can roll it back. A WAL checkpoint cannot run inside a transaction, so this runs just
    // before it; nothing else writes the file meanwhile (its users are shut out while the job runs).
    const keepSnapshot =
      snapshot === undefined
        ? undefined
        : () => {
            db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
            if (!(job.snapshotPrepared === true && copyOverDurably(job.file, snapshot))) copyFileDurably(job.file, snapshot);
          };
    const moved = moveToTarget(db, job, migrations, keepSnapshot);
    return { ...moved, changeCounter: changeCounterOf(job.file, job.journalMode) };
  } catch (error) {
    if (snapshot !== undefined) removeFileAndSidecars(snapshot);
    throw error;
  } finally {
    db.close();
  }
}

/**
 * Moves the file open as `db` to `job.target` in one transaction, `beforeMigrating` run first once
 * the version is known to be below it.
 *
 * Usually the file is at the version the catalog says (`expected`), and that is checked inside the
 * transaction by a statement-free exec: then no statement is ever prepared on the connection, so
 * closing it gives the file's descriptor back at once (a prepared statement keeps it open until
 * collected, and a migration thread rarely collects: see migration-worker.ts). Only when the
 * check fails (a crash between a migration and its record), or there is work to do first, is the
 * version read with a statement.
 */
function moveToTarget(db: SqliteDatabase, job: MigrateFileJob, migrations: MigrationSet, beforeMigrating?: () => void): { from: number; to: number } {
  const { expected, target } = job;
  if (beforeMigrating === undefined && expected !== undefined && expected > 0 && expected < target) {
    try {
      return { from: expected, to: migrateTo(db, migrations, target, { from: expected, checkFrom: true, atomic: true }) };
    } catch (error) {
      if (!(error instanceof VersionMismatch)) throw error;
    }
  }
  const from = currentVersion(db);
  if (from >= target) return { from, to: from };
  beforeMigrating?.();
  return { from, to: migrateTo(db, migrations, target, { from, atomic: true }) };
}

/**
 * Migrates a copy of a rollback-journal file and renames it over the file, whose old inode stays
 * as the snapshot under a second name when one is kept: the snapshot costs no copy of its own, and
 * the migration no journal fsyncs (the copy is scratch until it is placed, so it runs with the
 * journal in memory and no syncs, then is synced once). Two flushes per instance where migrating
 * in place and keeping a copy took four or more.
 *
 * Crash safety, step by step:
 * - a hot journal a crash left beside the file is rolled back first, so the copy is a committed state;
 * - the snapshot name is a link to the file made durable before the rename (made ahead, its
 *   directory synced, or made here), so the old inode always has a name;
 * - the copy is synced before the rename and the directory after it: the live path is the old file
 *   or the whole migrated one;
 * - a crash before the rename leaves the old file live, a link to it (not a snapshot: rollback
 *   refuses it) and a `.migrating` scrap that the next attempt overwrites; after it, a migrated file
 *   that resume recognises by its version, and the snapshot.
 */
function migrateBySwap(job: MigrateFileJob, snapshot: string | undefined, migrations: MigrationSet): MigrateFileResult {
  // Only a journal or WAL file beside it can hold state the file lacks; opening the file as its
  // users do rolls back (or checkpoints) it.
  if (fs.existsSync(`${job.file}-journal`) || fs.existsSync(`${job.file}-wal`)) {
    const live = SqliteDatabase.open(job.file, { journalMode: job.journalMode, busyTimeoutMs: job.busyTimeoutMs });
    try {
      live.exec('BEGIN IMMEDIATE; ROLLBACK');
    } finally {
      live.close();
    }
  }
  const next = migratingFileOf(job.file);
  fs.copyFileSync(job.file, next);
  try {
    const db = SqliteDatabase.open(next, { journalMode: 'memory', synchronous: 'off', busyTimeoutMs: job.busyTimeoutMs });
    let moved: { from: number; to: number };
    try {
      moved = moveToTarget(db, job, migrations);
    } finally {
      db.close();
    }
    if (moved.to === moved.from) {
      fs.rmSync(next);
      return { ...moved, changeCounter: changeCounterOf(job.file, job.journalMode) };
    }
    const changeCounter = changeCounterOf(next, job.journalMode);
    if (snapshot !== undefined) keepAsSnapshot(job.file, snapshot, job.snapshotPrepared === true);
    crashPoint('rollout:swapping');
    placeDurably(next, job.file);
    return { ...moved, changeCounter };
  } catch (error) {
    fs.rmSync(next, { force: true });
    throw error;
  }
}

/**
 * Makes `snapshot` a durable second name of `file`. A link made ahead is kept as it is; anything
 * else there (a link to an earlier file of the instance, replaced since, or an empty file) is
 * replaced. Where the file system cannot link, the file is copied.
 */
function keepAsSnapshot(file: string, snapshot: string, prepared: boolean): void {
  if (sameFile(file, snapshot)) {
    if (!prepared) fsyncPath(path.dirname(snapshot));
    return;
  }
  try {
    linkDurably(file, snapshot);
  } catch (error) {
    if (!cannotLink(error)) throw error;
    copyFileDurably(file, snapshot);
  }
}

/** Puts a snapshot back over the live file: copied aside, synced, then one rename, so a crash leaves either file whole. */
export function restoreFile(job: RestoreFileJob): void {
  for (const suffix of ['-journal', '-wal', '-shm']) fs.rmSync(job.file + suffix, { force: true });
  copyFileDurably(job.snapshot, job.file);
}

/**
 * SQLite's file change counter (header bytes 24–27), bumped by every write transaction in
 * rollback-journal mode; null in WAL mode, where it is not kept up to date.
 */
export function changeCounterOf(file: string, journalMode: JournalMode): number | null {
  if (journalMode === 'wal') return null;
  const fd = fs.openSync(file, 'r');
  try {
    const header = Buffer.alloc(28);
    fs.readSync(fd, header, 0, 28, 0);
    return header.readUInt32BE(24);
  } finally {
    fs.closeSync(fd);
  }
}

/** An error as it crosses from a worker thread: structured clone keeps neither classes nor codes. */
export type PortableError =
  | { kind: 'fleetql'; code: string; message: string; extensions: Record<string, unknown>; cause?: string }
  | { kind: 'storage'; sqliteCode: string; message: string }
  | { kind: 'other'; message: string; stack?: string };

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: PortableError };

export function toPortable(error: unknown): PortableError {
  if (isFleetqlError(error)) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    return { kind: 'fleetql', code: error.code, message: error.message, extensions: { ...error.extensions }, ...(cause === undefined ? {} : { cause }) };
  }
  if (error instanceof StorageError) return { kind: 'storage', sqliteCode: error.sqliteCode, message: error.message };
  if (error instanceof Error) return { kind: 'other', message: error.message, ...(error.stack === undefined ? {} : { stack: error.stack }) };
  return { kind: 'other', message: String(error) };
}

export function fromPortable(error: PortableError): Error {
  switch (error.kind) {
    case 'fleetql':
      return new FleetqlError(error.code as FleetqlError['code'], error.message, {
        extensions: error.extensions,
        ...(error.cause === undefined ? {} : { cause: new Error(error.cause) }),
      });
    case 'storage':
      return new StorageError(error.message, error.sqliteCode);
    default: {
      const rebuilt = new Error(error.message);
      if (error.stack !== undefined) rebuilt.stack = error.stack;
      return rebuilt;
    }
  }
}

/** Runs `fn`, with its result or error in a form that crosses threads. */
export function outcomeOf<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error: toPortable(error) };
  }
}
