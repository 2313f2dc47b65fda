import fs from 'node:fs';
import path from 'node:path';
import { FleetqlError, isFleetqlError } from '../errors.js';
import { crashPoint } from './crash-points.js';
import { currentVersion, migrateTo, VersionMismatch, type MigrationSet } from '../migrations/index.js';
import {
  copyFileDurably,
  copyOverDurably,
  createFilesDurably,
  PackWriter,
  removeFileAndSidecars,
  restorePackEntryDurably,
  sameAsPackEntry,
  SqliteDatabase,
  StorageError,
  type JournalMode,
  type PackEntry,
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
   * rather than read first (see `migrateFile`); the file's own version wins when they differ.
   */
  expected?: number | undefined;
  /** Where to keep a copy of the file before migrating it (for a rollback). */
  snapshot?: string | undefined;
  /** The snapshot file was created ahead and its directory synced (PrepareSnapshotsJob): one fsync less. */
  snapshotPrepared?: boolean | undefined;
  /**
   * The instance's image in a snapshot pack made ahead (PackSnapshotsJob). If the file still holds
   * exactly those bytes when its migration begins, that image is its snapshot and nothing is copied.
   */
  packed?: PackedSnapshot | undefined;
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
  /** The image's place when `snapshot` is a pack. */
  entry?: PackEntry | undefined;
}

/** An instance's image in a snapshot pack. */
export interface PackedSnapshot {
  pack: string;
  entry: PackEntry;
}

/**
 * Snapshots of a batch of a rollout's instances made ahead, in one pack (one fsync for the batch).
 * Read without a lock while the instances serve: an image caught in the middle of a write is never
 * used, because a migration uses an image only if its file holds exactly those bytes when the
 * migration's transaction begins (a committed state, nothing writing), else it copies the file then.
 */
export interface PackSnapshotsJob {
  /** The pack's path, in the rollout's snapshot directory. */
  pack: string;
  instances: Array<{ id: string; file: string }>;
}

/** Empty snapshot files made ahead for a batch of a rollout's instances, their directory synced once. */
export interface PrepareSnapshotsJob {
  dir: string;
  names: string[];
}

export function prepareSnapshots(job: PrepareSnapshotsJob): void {
  createFilesDurably(job.dir, job.names);
}

/** Writes the pack of PackSnapshotsJob; an instance whose file cannot be read is left out (it is copied when it migrates). */
export function packSnapshots(job: PackSnapshotsJob): Map<string, PackEntry> {
  createFilesDurably(path.dirname(job.pack), []);
  const writer = new PackWriter(job.pack);
  try {
    for (const { id, file } of job.instances) writer.addFile(id, file);
    crashPoint('rollout:packing');
  } catch (error) {
    writer.abort();
    throw error;
  }
  return writer.finish();
}

/**
 * Moves the file to `target` in one transaction. The version is the file's own: a file already
 * there (a rollout resumed after a crash) is left alone.
 *
 * Usually the file is at the version the catalog says (`expected`), and that is checked inside the
 * transaction by a statement-free exec: then no statement is ever prepared on the connection, so
 * closing it gives the file's descriptor back at once (a prepared statement keeps it open until
 * collected, and a migration thread rarely collects: see migration-worker.ts). Only when the
 * check fails (a crash between a migration and its record) is the version read with a statement.
 */
export function migrateFile(job: MigrateFileJob, migrations: MigrationSet): MigrateFileResult {
  const db = SqliteDatabase.open(job.file, {
    journalMode: job.journalMode,
    busyTimeoutMs: job.busyTimeoutMs,
    synchronous: job.journalMode === 'wal' ? 'normal' : 'full',
  });
  // Durable (data and directory entry) before the migration commits: once it commits, a crash before
  // the catalog records it leaves an instance that resume records as done, and only this copy can
  // roll it back. A file made ahead has its entry on disk already, so only its data is synced.
  // Taken inside the transaction, before any change, so nothing writes the file meanwhile.
  const snapshot =
    job.snapshot === undefined
      ? undefined
      : () => {
          if (job.packed !== undefined && sameAsPackEntryOrFalse(job.file, job.packed)) return;
          if (job.journalMode === 'wal') db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
          if (!(job.snapshotPrepared === true && copyOverDurably(job.file, job.snapshot!))) copyFileDurably(job.file, job.snapshot!);
        };
  const migrate = (from: number, checkFrom: boolean): MigrateFileResult => {
    try {
      // A WAL checkpoint cannot run inside a transaction ("database table is locked"): a WAL
      // file's snapshot is taken just before it, its version already read. Nothing else writes
      // the file meanwhile: its users are shut out while the job runs.
      const beforeTransaction = snapshot !== undefined && job.journalMode === 'wal';
      if (beforeTransaction) snapshot();
      const to = migrateTo(db, migrations, job.target, { from, checkFrom, atomic: true, ...(snapshot === undefined || beforeTransaction ? {} : { beforeChanges: snapshot }) });
      return { from, to, changeCounter: changeCounterOf(job.file, job.journalMode) };
    } catch (error) {
      if (job.snapshot !== undefined && !(error instanceof VersionMismatch)) removeFileAndSidecars(job.snapshot);
      throw error;
    }
  };
  try {
    // A WAL file's version is read first (its snapshot needs a checkpoint outside the transaction).
    if (job.expected !== undefined && job.expected > 0 && job.expected < job.target && job.journalMode !== 'wal') {
      try {
        return migrate(job.expected, true);
      } catch (error) {
        if (!(error instanceof VersionMismatch)) throw error;
      }
    }
    const from = currentVersion(db);
    if (from >= job.target) return { from, to: from, changeCounter: changeCounterOf(job.file, job.journalMode) };
    return migrate(from, false);
  } finally {
    db.close();
  }
}

/** A pack that cannot be read is as good as a stale image: the file is copied instead. */
function sameAsPackEntryOrFalse(file: string, packed: PackedSnapshot): boolean {
  try {
    return sameAsPackEntry(file, packed.pack, packed.entry);
  } catch {
    return false;
  }
}

/** Puts a snapshot back over the live file: copied aside, synced, then one rename, so a crash leaves either file whole. */
export function restoreFile(job: RestoreFileJob): void {
  for (const suffix of ['-journal', '-wal', '-shm']) fs.rmSync(job.file + suffix, { force: true });
  if (job.entry !== undefined) restorePackEntryDurably(job.snapshot, job.entry, job.file);
  else copyFileDurably(job.snapshot, job.file);
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
