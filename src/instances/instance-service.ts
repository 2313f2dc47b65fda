import fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import path from 'node:path';
import type { FleetqlConfig } from '../config/index.js';
import type { Catalog, InstanceFilter, InstanceQuery, InstanceRecord, InstanceState, Labels, Operation } from '../catalog/index.js';
import { FleetqlError, instanceNotFound, isFleetqlError } from '../errors.js';
import { appliedMigrations, currentVersion, migrateTo, type AppliedMigration, type MigrationSet } from '../migrations/index.js';
import { fsyncPath, removeFileAndSidecars, sameFile, SqliteDatabase, StorageError, type JournalMode } from '../storage/index.js';
import { crashPoint } from './crash-points.js';
import { changeCounterOf, migratingFileOf } from './file-migration.js';
import { HandleCache, notCached, type HandleCacheStats } from './handle-cache.js';
import { parseInstanceId, type InstanceId } from './instance-id.js';
import { InstanceLayout } from './instance-layout.js';
import { KeyedMutex } from './keyed-mutex.js';
import { parseLabels } from './labels.js';
import { MigrationRunner } from './migration-runner.js';

/** Removes an instance's file, its journals, and a migrated copy a crash left beside it (see file-migration.ts). */
function removeInstanceFile(file: string): void {
  removeFileAndSidecars(file);
  fs.rmSync(migratingFileOf(file), { force: true });
}

/** Errors from a damaged or missing instance file become INSTANCE_UNAVAILABLE for that instance. */
export function instanceReadError(id: string, error: unknown): unknown {
  if (error instanceof StorageError && error.damaged) {
    return new FleetqlError('INSTANCE_UNAVAILABLE', `instance "${id}" cannot be read`, { cause: error, extensions: { instance_id: id } });
  }
  if (isFleetqlError(error, 'INSTANCE_UNAVAILABLE') && error.extensions['instance_id'] === undefined) {
    return new FleetqlError('INSTANCE_UNAVAILABLE', `instance "${id}" cannot be read: ${error.message}`, { cause: error, extensions: { instance_id: id } });
  }
  return error;
}

/** What `readNow` returns when the read must go through the catalog (`withInstanceNow`). */
export const later: unique symbol = Symbol('later');

/**
 * Prepared reads are good while their generation lasts: it ends, for good, as soon as any handle
 * closes or a lifecycle operation shuts an instance's users out.
 */
export interface ReadGeneration {
  readonly ended: boolean;
}

/**
 * A fan-out's reads of a question, prepared on its instances' handles (see `keepPreparedReads`):
 * `reads[i]` is the read of `records[i]`, or undefined.
 */
export interface PreparedReads {
  readonly records: readonly InstanceRecord[];
  readonly reads: readonly unknown[];
  readonly generation: ReadGeneration;
}

/** Questions whose prepared reads are kept (each holds a function per instance). */
const preparedQuestions = 8;

export interface InstanceServiceOptions {
  catalog: Catalog;
  migrations: MigrationSet;
  instancesDir: string;
  /** Where rollouts keep pre-migration snapshots. */
  snapshotsDir: string;
  journalMode: JournalMode;
  busyTimeoutMs: number;
  maxOpenDescriptors: number;
  /** Migrate an instance behind head on first access (see `withInstance`). */
  lazyMigrations?: boolean;
  /** Told when a lazy migration fails (the instance keeps being served at its version). */
  onLazyMigrationFailure?: (instanceId: string, error: unknown) => void;
  /** Worker threads for migrations and rollbacks; 0 runs them on the calling thread. */
  migrationThreads?: number;
}

/** The instance service's settings in a server configuration (catalog and migrations are the caller's). */
export function instanceSettings(
  config: Pick<FleetqlConfig, 'instancesDir' | 'snapshotsDir' | 'journalMode' | 'busyTimeoutMs' | 'maxOpenDescriptors' | 'lazyMigrations' | 'migrationThreads'>,
): Omit<InstanceServiceOptions, 'catalog' | 'migrations' | 'onLazyMigrationFailure'> {
  const { instancesDir, snapshotsDir, journalMode, busyTimeoutMs, maxOpenDescriptors, lazyMigrations, migrationThreads } = config;
  return { instancesDir, snapshotsDir, journalMode, busyTimeoutMs, maxOpenDescriptors, lazyMigrations, migrationThreads };
}

/** Snapshots made ahead for a batch (see InstanceService.prepareSnapshots). */
export interface SnapshotsAhead {
  /** The snapshot entries exist and are on disk (links to the files, or empty files under WAL). */
  created: boolean;
}

export interface RecoveryReport {
  createsRolledBack: string[];
  destroysCompleted: string[];
  /** Retirements interrupted before their archive was verified: the instance is ACTIVE again. */
  retiresRolledBack: string[];
  /** Retirements interrupted after: the file removal was finished. */
  retiresCompleted: string[];
}

/**
 * Instance lifecycle and access. Lifecycle operations on one instance are serialized by a
 * per-instance lock and journaled in the catalog around every file step, so a crash at any point
 * leaves a pending operation that `recover()` finishes or undoes.
 */
export class InstanceService {
  readonly #catalog: Catalog;
  readonly #migrations: MigrationSet;
  readonly #layout: InstanceLayout;
  readonly #cache: HandleCache;
  readonly #locks = new KeyedMutex();
  readonly #journalMode: JournalMode;
  readonly #busyTimeoutMs: number;
  #recordedUpTo = 0;
  readonly #lazy: boolean;
  readonly #onLazyMigrationFailure: (instanceId: string, error: unknown) => void;
  readonly #runner: MigrationRunner;
  /** Instances whose file a worker is changing: their users wait for this to settle. */
  readonly #exclusive = new Map<string, Promise<void>>();
  readonly #prepared = new Map<string, PreparedReads>();
  /** Reads run from prepared ones (counted as handle cache hits: they were served by open handles). */
  #preparedHits = 0;
  #generation = { ended: false };

  constructor(options: InstanceServiceOptions) {
    this.#catalog = options.catalog;
    this.#migrations = options.migrations;
    this.#layout = new InstanceLayout(options.instancesDir, options.snapshotsDir);
    this.#journalMode = options.journalMode;
    this.#busyTimeoutMs = options.busyTimeoutMs;
    this.#lazy = options.lazyMigrations ?? false;
    this.#onLazyMigrationFailure = options.onLazyMigrationFailure ?? (() => undefined);
    this.#runner = new MigrationRunner(options.migrations, options.migrationThreads ?? 0);
    this.#cache = new HandleCache({
      maxDescriptors: options.maxOpenDescriptors,
      descriptorsPerHandle: options.journalMode === 'wal' ? 3 : 1,
      open: (file) => this.#open(file),
      onClose: () => this.#dropPrepared(),
    });
  }

  get head(): number {
    return this.#migrations.head;
  }

  #open(file: string): SqliteDatabase {
    return SqliteDatabase.open(file, {
      journalMode: this.#journalMode,
      busyTimeoutMs: this.#busyTimeoutMs,
      synchronous: this.#journalMode === 'wal' ? 'normal' : 'full',
      safeIntegers: true,
      // The cache's handle is its file's only connection until it is closed (see #exclusively).
      holdReadLock: true,
    });
  }

  /** The catalog record of a non-destroyed instance, or INSTANCE_NOT_FOUND. */
  get(rawId: unknown): InstanceRecord {
    const id = parseInstanceId(rawId);
    const record = this.#catalog.getInstance(id);
    if (record === undefined || record.state === 'CREATING') throw instanceNotFound(id);
    return record;
  }

  list(query: InstanceQuery): readonly InstanceRecord[] {
    return this.#catalog.listInstances(query);
  }

  count(where?: InstanceFilter): number {
    return this.#catalog.countInstances(where);
  }

  countByVersion(): Map<number, number> {
    return this.#catalog.countByVersion();
  }

  /** Bytes on disk of the instance's file and its journal; 0 when it has no file. */
  sizeBytes(record: InstanceRecord): number {
    if (record.state !== 'ACTIVE' && record.state !== 'QUARANTINED') return 0;
    const file = this.#layout.fileOf(record.id as InstanceId);
    let total = 0;
    for (const suffix of ['', '-journal', '-wal']) {
      try {
        total += fs.statSync(file + suffix).size;
      } catch {
        // absent sidecars are normal
      }
    }
    return total;
  }

  /**
   * Runs `fn` on the open handle of an ACTIVE instance and gives the handle back afterwards.
   * Errors from a damaged or missing file come back as INSTANCE_UNAVAILABLE for that instance.
   */
  async withInstance<T>(rawId: unknown, fn: (db: SqliteDatabase, record: InstanceRecord) => T | Promise<T>, options: { admit?: (record: InstanceRecord) => void } = {}): Promise<T> {
    const id = parseInstanceId(rawId);
    for (let busy = this.#exclusive.get(id); busy !== undefined; busy = this.#exclusive.get(id)) await busy;
    let record = this.get(id);
    // The caller's access check, on the record just read and before its state is looked at.
    options.admit?.(record);
    if (this.#lazy && record.state === 'ACTIVE' && record.schema_version < this.#migrations.head) record = await this.#migrateLazily(record);
    return this.#withActive(record, fn);
  }

  /**
   * `withInstance` for a read that runs at once (`fn` synchronous): answered in this turn of the
   * event loop, the handle opened now if it is not cached, unless something must be waited for
   * first (a migration or restore on the instance, a lazy migration due, the handle cache full of
   * handles in use or of closed descriptors to release); then it is `withInstance`'s promise. A
   * cold fan-out opens instance after instance this way: measured over 1,000 cold instances, a
   * promise and a turn between two opens made the driver's calls a third to a half slower.
   */
  withInstanceNow<T>(rawId: unknown, fn: (db: SqliteDatabase, record: InstanceRecord) => T, options: { admit?: (record: InstanceRecord) => void } = {}): T | Promise<T> {
    const id = parseInstanceId(rawId);
    if (this.#exclusive.has(id)) return this.withInstance(id, fn, options);
    const record = this.get(id);
    options.admit?.(record);
    if (this.#lazy && record.state === 'ACTIVE' && record.schema_version < this.#migrations.head) return this.withInstance(id, fn, options);
    this.#assertActive(record);
    let result: T | typeof notCached;
    try {
      result = this.#cache.useNow(this.#layout.fileOf(id), fn, record);
    } catch (error) {
      throw instanceReadError(id, error);
    }
    return result === notCached ? this.withInstance(id, fn, options) : result;
  }

  /** Take before reading the records a later `readNow` is given (see there). */
  get readMark(): number {
    return this.#cache.opens;
  }

  /**
   * Runs a synchronous read on an instance's cached handle at once, with `record` as the caller
   * read it from the catalog after taking `mark` (a fleet's selection), or returns `later` when
   * that is not safe and `withInstanceNow` must do it. No catalog read, no promise: a warm fan-out
   * costs little more than the statement.
   *
   * Why a record read earlier is good enough here: the handle must have been open since `mark`,
   * and whatever changes an instance's file or takes it out of service closes its handle first
   * (migrations and snapshot restores under `#exclusively`; retire and destroy evict in the same
   * turn as they mark the catalog). So a handle still open since `mark` means the file has the
   * schema version the record says and the instance is still in the state the record says. A
   * relabel changes only the catalog: the read answers as of the selection, as a read that began
   * before the relabel would. Anything else (not ACTIVE, a lazy migration due, a migration
   * waiting, the handle not cached or being evicted or reopened since) goes the async way, which
   * reads the catalog again.
   *
   * What `fn` returns may go on using the handle until the event loop turns (a fan-out prepares a
   * batch of statements, then runs them): only a turn lets anything close a handle in between.
   */
  readNow<T>(record: InstanceRecord, mark: number, fn: (db: SqliteDatabase, record: InstanceRecord) => T): T | typeof later {
    const id = record.id;
    if (record.state !== 'ACTIVE' || this.#exclusive.has(id)) return later;
    if (this.#lazy && record.schema_version < this.#migrations.head) return later;
    try {
      const result = this.#cache.useCached(this.#layout.fileOf(id as InstanceId), mark, fn, record);
      return result === notCached ? later : result;
    } catch (error) {
      throw instanceReadError(id, error);
    }
  }

  /**
   * The reads a fan-out prepared for `question` (see `keepPreparedReads`), if they are still good
   * for a fan-out over `records`: the same records (the same objects, as the catalog's cached
   * listing gives them until anything in it changes) and no handle closed since. A read taken from
   * them runs only if their generation has not ended when its batch is prepared: it may go on
   * using the handle until the event loop turns, as a read given by `readNow` may.
   */
  preparedReads(question: string, records: readonly InstanceRecord[]): PreparedReads | undefined {
    const prepared = this.#prepared.get(question);
    if (prepared === undefined || prepared.records.length !== records.length) return undefined;
    for (let i = 0; i < records.length; i++) if (prepared.records[i] !== records[i]) return undefined;
    return prepared;
  }

  /**
   * Keeps a fan-out's reads of `question` (functions `readNow` gave, one per record or undefined)
   * for the next asking: a dashboard's question asked again then skips finding each instance's
   * handle and statement. Only if no handle closed during the fan-out (`generation`: the
   * `readGeneration` taken before it has not ended). Dropped when any handle closes, so they never
   * keep a closed handle's statements (and its descriptors) alive.
   */
  keepPreparedReads(question: string, records: readonly InstanceRecord[], reads: readonly unknown[], generation: ReadGeneration): void {
    if (generation.ended) return;
    this.#prepared.delete(question);
    this.#prepared.set(question, { records, reads, generation });
    if (this.#prepared.size > preparedQuestions) this.#prepared.delete(this.#prepared.keys().next().value!);
  }

  /** Counts reads run from prepared ones (see `cacheStats`). */
  countPreparedHits(count: number): void {
    this.#preparedHits += count;
  }

  /** Fan-out reads run from prepared ones so far, and the questions whose prepared reads are kept now. */
  preparedReadStats(): { hits: number; questions: number } {
    return { hits: this.#preparedHits, questions: this.#prepared.size };
  }

  /** The generation reads prepared now belong to (see `keepPreparedReads`). */
  get readGeneration(): ReadGeneration {
    return this.#generation;
  }

  #dropPrepared(): void {
    this.#generation.ended = true;
    this.#generation = { ended: false };
    this.#prepared.clear();
  }

  /**
   * Lazy mode: an instance behind head moves to head on first access, under its lock, before the
   * request is served. If that fails it is served at the version it has (mixed-version rules), and
   * the failure is reported to `onLazyMigrationFailure`.
   */
  async #migrateLazily(record: InstanceRecord): Promise<InstanceRecord> {
    const id = record.id as InstanceId;
    return this.#locks.run(id, async () => {
      const current = this.#catalog.getInstance(id);
      if (current === undefined || current.state !== 'ACTIVE' || current.schema_version >= this.#migrations.head) return current ?? record;
      try {
        const { to } = await this.#migrateFile(current, this.#migrations.head);
        return this.#catalog.setSchemaVersion(id, to);
      } catch (error) {
        this.#onLazyMigrationFailure(id, error);
        return current;
      }
    });
  }

  /** Throws unless the instance is ACTIVE, with the code its state calls for. */
  #assertActive(record: InstanceRecord): void {
    const id = record.id;
    if (record.state === 'DESTROYED') throw instanceNotFound(id);
    if (record.state === 'QUARANTINED') {
      throw new FleetqlError('INSTANCE_QUARANTINED', `instance "${id}" is quarantined`, { extensions: { instance_id: id } });
    }
    if (record.state !== 'ACTIVE') {
      throw new FleetqlError('INSTANCE_UNAVAILABLE', `instance "${id}" is ${record.state.toLowerCase()}`, { extensions: { instance_id: id } });
    }
  }

  async #withActive<T>(record: InstanceRecord, fn: (db: SqliteDatabase, record: InstanceRecord) => T | Promise<T>): Promise<T> {
    this.#assertActive(record);
    try {
      return await this.#cache.use(this.#layout.fileOf(record.id as InstanceId), (db) => fn(db, record));
    } catch (error) {
      throw instanceReadError(record.id, error);
    }
  }


  /**
   * Runs `work` on the instance's file with nobody else on it: new users wait (without blocking the
   * event loop), current ones finish first, and the cached handle is closed, so a worker thread's
   * connection is the only one, and only once a migration thread is free for it. Call under the
   * instance's lock.
   */
  #exclusively<T>(id: InstanceId, work: (file: string) => Promise<T>): Promise<T> {
    return this.#runner.withThread(() => this.#shutOut(id, work));
  }

  async #shutOut<T>(id: InstanceId, work: (file: string) => Promise<T>): Promise<T> {
    let release!: () => void;
    this.#exclusive.set(id, new Promise<void>((resolve) => (release = resolve)));
    // Prepared reads do not look at #exclusive (readNow does): none may run from here on.
    this.#dropPrepared();
    try {
      const file = this.#layout.fileOf(id);
      await this.#cache.evict(file);
      if (!fs.existsSync(file)) throw new FleetqlError('INSTANCE_UNAVAILABLE', 'the instance file is missing');
      return await work(file);
    } catch (error) {
      throw instanceReadError(id, error);
    } finally {
      this.#exclusive.delete(id);
      release();
    }
  }

  /** Moves an ACTIVE instance's file to `target` on a migration worker. Call under the instance's lock. */
  #migrateFile(record: InstanceRecord, target: number, snapshot?: { file: string; prepared: boolean }): Promise<{ from: number; to: number; changeCounter: number | null }> {
    this.#assertActive(record);
    const id = record.id as InstanceId;
    return this.#exclusively(id, (file) =>
      this.#runner.migrate({
        file,
        target,
        expected: record.schema_version,
        snapshot: snapshot?.file,
        snapshotPrepared: snapshot?.prepared,
        journalMode: this.#journalMode,
        busyTimeoutMs: this.#busyTimeoutMs,
      }),
    );
  }

  /** The migrations recorded inside the instance's own file. */
  appliedMigrations(rawId: unknown): Promise<AppliedMigration[]> {
    return this.withInstance(rawId, (db) => appliedMigrations(db));
  }

  /**
   * Moves an ACTIVE instance to `target` in one transaction under its lock, so a failure leaves it
   * at the version it had (and serving). Reads the version from the file itself: an instance already
   * there (a rollout resumed after a crash) is left alone. With `snapshotOf`, a copy of the file is
   * kept first (for a rollback). Returns the file's change counter after the move, by which a
   * rollback later tells whether the instance was written since. The catalog is the caller's.
   */
  async migrate(rawId: unknown, target: number, options: { snapshotOf?: number; ahead?: SnapshotsAhead | undefined } = {}): Promise<{ from: number; to: number; changeCounter: number | null }> {
    const id = parseInstanceId(rawId);
    const snapshot =
      options.snapshotOf === undefined
        ? undefined
        : { file: this.#layout.snapshotOf(options.snapshotOf, id), prepared: options.ahead?.created === true };
    return this.#locks.run(id, () => this.#migrateFile(this.get(id), target, snapshot));
  }

  /**
   * Makes the snapshot entries of a batch of a rollout's instances ahead of their migrations, on a
   * migration thread, with one directory fsync for the batch (an fsync per instance cost a rollout
   * about a fifth of its rate). With the rollback journal each is a hard link to the instance's
   * file, which becomes its snapshot when the migrated copy replaces the file (see
   * file-migration.ts); under WAL, an empty file the migration copies the file over. Never fails:
   * what could not be made ahead is made as each instance migrates.
   */
  async prepareSnapshots(rolloutId: number, rawIds: readonly string[]): Promise<SnapshotsAhead> {
    const ids = rawIds.map((rawId) => parseInstanceId(rawId));
    try {
      await this.#runner.prepareSnapshots({
        dir: this.#layout.snapshotsOfRollout(rolloutId),
        names: ids.map((id) => this.#layout.snapshotNameOf(id)),
        sources: this.#journalMode === 'wal' ? undefined : ids.map((id) => this.#layout.fileOf(id)),
      });
      return { created: true };
    } catch {
      return { created: false };
    }
  }

  /**
   * Puts an instance back to the snapshot a rollout took before migrating it. Refuses an instance
   * written since it migrated (its change counter moved), unless `force`; an instance already back
   * at `version` (a rollback resumed after a crash) is left alone. The catalog is the caller's.
   */
  async restoreSnapshot(rawId: unknown, rolloutId: number, expected: { version: number; changeCounter: number | null; force: boolean }): Promise<void> {
    const id = parseInstanceId(rawId);
    const file = this.#layout.fileOf(id);
    await this.#locks.run(id, async () => {
      const now = await this.#withActive(this.get(id), (db) => currentVersion(db));
      if (now <= expected.version) return;
      if (!expected.force) {
        const counter = changeCounterOf(file, this.#journalMode);
        if (counter === null || expected.changeCounter === null) {
          throw new FleetqlError('WRITTEN_SINCE_MIGRATION', `instance "${id}" uses WAL, where writes since the migration cannot be told apart: roll back with force: true to drop them`, { extensions: { instance_id: id } });
        }
        if (counter !== expected.changeCounter) {
          throw new FleetqlError('WRITTEN_SINCE_MIGRATION', `instance "${id}" was written after it migrated; rolling back would drop those writes (roll back with force: true to drop them)`, { extensions: { instance_id: id } });
        }
      }
      const snapshot = this.#snapshotToRestore(rolloutId, id);
      if (snapshot === undefined) throw new FleetqlError('SNAPSHOT_MISSING', `no snapshot of instance "${id}" is kept for rollout ${rolloutId}`, { extensions: { instance_id: id } });
      await this.#exclusively(id, (target) => this.#runner.restore({ snapshot, file: target }));
    });
  }

  /**
   * The snapshot a rollout kept of an instance: where rollouts keep them, else where fleetql kept
   * them before 2026-12. No snapshot: an empty file (made ahead under WAL, never filled), or a link
   * that still names the live file (made ahead, the instance never migrated by the rollout).
   */
  #snapshotToRestore(rolloutId: number, id: InstanceId): string | undefined {
    const own = this.#layout.snapshotOf(rolloutId, id);
    const size = fs.statSync(own, { throwIfNoEntry: false })?.size;
    if (size !== undefined) return size > 0 && !sameFile(own, this.#layout.fileOf(id)) ? own : undefined;
    const legacy = this.#layout.legacySnapshotOf(rolloutId, id);
    return fs.statSync(legacy, { throwIfNoEntry: false })?.size ? legacy : undefined;
  }

  removeSnapshots(rolloutId: number): void {
    fs.rmSync(this.#layout.snapshotsOfRollout(rolloutId), { recursive: true, force: true });
  }

  /** Creates an instance at the head version: catalog claim, file built aside, renamed into place, committed. */
  async create(rawId: unknown, rawLabels: unknown): Promise<InstanceRecord> {
    const id = parseInstanceId(rawId);
    const labels = parseLabels(rawLabels);
    this.#recordMigrations();
    return this.#create(id, labels, ['DESTROYED'], (building) => {
      this.#build(building);
      return this.#migrations.head;
    });
  }

  /**
   * Creates an instance from a database image (an archive being restored): written aside, checked
   * with `PRAGMA integrity_check` and against `schemaVersion`, then placed and committed exactly as
   * a create is (journaled; a crash leaves it fully there or fully gone). An ARCHIVED or DESTROYED
   * id may be reused; ARCHIVE_CORRUPT when the image is not a sound database at that version.
   */
  async createFromImage(rawId: unknown, rawLabels: unknown, image: Buffer, schemaVersion: number): Promise<InstanceRecord> {
    const id = parseInstanceId(rawId);
    const labels = parseLabels(rawLabels);
    if (schemaVersion > this.#migrations.head) {
      throw new FleetqlError('MIGRATION_MISSING', `the archive is at schema version ${schemaVersion}, past this server's head (${this.#migrations.head})`);
    }
    return this.#create(id, labels, ['DESTROYED', 'ARCHIVED'], (building) => {
      fs.writeFileSync(building, image);
      const db = SqliteDatabase.open(building, { journalMode: 'memory', synchronous: 'off', busyTimeoutMs: this.#busyTimeoutMs });
      try {
        const check = db.rows('PRAGMA integrity_check');
        const ok = check.length === 1 && check[0]?.[0] === 'ok';
        if (!ok) throw new FleetqlError('ARCHIVE_CORRUPT', `the archived database of "${id}" fails its integrity check`);
        const version = currentVersion(db);
        if (version !== schemaVersion) throw new FleetqlError('ARCHIVE_CORRUPT', `the archived database of "${id}" is at version ${version}, its manifest says ${schemaVersion}`);
        if (this.#journalMode === 'wal') db.exec('PRAGMA journal_mode = WAL');
      } catch (error) {
        if (error instanceof StorageError) throw new FleetqlError('ARCHIVE_CORRUPT', `the archived database of "${id}" cannot be read`, { cause: error });
        throw error;
      } finally {
        db.close();
      }
      fsyncPath(building);
      return schemaVersion;
    });
  }

  /** The journaled create: claim, build aside, place, commit; undone on any failure. */
  #create(id: InstanceId, labels: Labels, replaceable: readonly InstanceState[], build: (building: string) => number): Promise<InstanceRecord> {
    return this.#locks.run(id, async () => {
      const file = this.#layout.fileOf(id);
      const building = `${file}.creating`;
      const operation = this.#catalog.beginCreate(id, labels, {}, replaceable);
      crashPoint('create:journaled');
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        removeFileAndSidecars(building);
        const version = build(building);
        crashPoint('create:file-built');
        await this.#cache.evict(file);
        fs.renameSync(building, file);
        fsyncPath(path.dirname(file));
        crashPoint('create:file-placed');
        const record = this.#catalog.completeCreate(operation, version);
        crashPoint('create:committed');
        return record;
      } catch (error) {
        this.#undoCreate(operation);
        throw error;
      }
    });
  }

  /**
   * A consistent copy of a live instance as one database image (VACUUM INTO: a compact snapshot of
   * the last committed state, taken in one step while other requests wait), for archiving.
   */
  async snapshotImage(rawId: unknown): Promise<{ record: InstanceRecord; image: Buffer; version: number }> {
    return this.withInstance(rawId, (db, record) => ({ record, ...this.#vacuumImage(db, record.id as InstanceId) }));
  }

  /** VACUUM INTO a temporary file, read back as one image; the temporary file is always removed. */
  #vacuumImage(db: SqliteDatabase, id: InstanceId): { image: Buffer; version: number } {
    const target = path.join(this.#layout.snapshotsRoot, 'archiving', `${id}.${process.pid}.${Date.now()}.db`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    try {
      db.run('VACUUM INTO ?', [target]);
      return { image: fs.readFileSync(target), version: currentVersion(db) };
    } finally {
      removeFileAndSidecars(target);
    }
  }

  /**
   * Builds a new instance file aside, unsynced (a crash here leaves only a file that recovery
   * deletes), then syncs it once: a handful of fsyncs per create instead of several per migration.
   */
  #build(file: string): void {
    const db = SqliteDatabase.open(file, { journalMode: 'memory', synchronous: 'off', busyTimeoutMs: this.#busyTimeoutMs });
    try {
      migrateTo(db, this.#migrations, this.#migrations.head, { from: 0 });
      if (this.#journalMode === 'wal') db.exec('PRAGMA journal_mode = WAL');
    } finally {
      db.close();
    }
    fsyncPath(file);
  }

  #undoCreate(operation: Operation): void {
    const file = this.#layout.fileOf(operation.instance_id as InstanceId);
    removeFileAndSidecars(`${file}.creating`);
    removeFileAndSidecars(file);
    this.#catalog.rollbackCreate(operation);
  }

  /** Applied migrations are recorded in the catalog before any instance runs them, so edits are caught. */
  #recordMigrations(): void {
    if (this.#recordedUpTo >= this.#migrations.head) return;
    this.#catalog.recordMigrations(this.#migrations.migrations);
    this.#recordedUpTo = this.#migrations.head;
  }

  /** Replaces the instance's labels. */
  async setLabels(rawId: unknown, rawLabels: unknown): Promise<InstanceRecord> {
    const id = parseInstanceId(rawId);
    const labels = parseLabels(rawLabels);
    return this.#locks.run(id, () => this.#catalog.setLabels(id, labels));
  }

  /**
   * Retires an instance into an archive: marked ARCHIVING (journaled; reads and writes wait out),
   * snapshotted, handed to `archive` (which stores and verifies it and returns its id), then marked
   * `finalState` and only then its file removed. If `archive` fails the instance is ACTIVE again.
   */
  async retire(rawId: unknown, finalState: 'ARCHIVED' | 'DESTROYED', archive: (record: InstanceRecord, image: Buffer, version: number) => Promise<string>): Promise<InstanceRecord> {
    const id = parseInstanceId(rawId);
    return this.#locks.run(id, async () => {
      const operation = this.#catalog.beginRetire(id, { final_state: finalState });
      crashPoint('retire:journaled');
      const file = this.#layout.fileOf(id);
      let archiveId: string;
      try {
        await this.#cache.evict(file);
        const { image, version } = this.#imageOf(file, id);
        archiveId = await archive(this.#catalog.getInstance(id)!, image, version);
      } catch (error) {
        this.#catalog.rollbackRetire(operation);
        throw error;
      }
      crashPoint('retire:archived');
      const record = this.#catalog.markRetired(operation, finalState, archiveId);
      crashPoint('retire:marked');
      await this.#removeRetiredFile(operation);
      crashPoint('retire:file-removed');
      this.#catalog.finishOperation(operation);
      return record;
    });
  }

  /** A snapshot image of a file nobody else uses (its handle was evicted), on a connection of its own. */
  #imageOf(file: string, id: InstanceId): { image: Buffer; version: number } {
    const db = SqliteDatabase.open(file, { journalMode: this.#journalMode, busyTimeoutMs: this.#busyTimeoutMs, safeIntegers: true });
    try {
      return this.#vacuumImage(db, id);
    } finally {
      db.close();
    }
  }

  async #removeRetiredFile(operation: Operation): Promise<void> {
    const file = this.#layout.fileOf(operation.instance_id as InstanceId);
    await this.#cache.evict(file);
    removeInstanceFile(file);
  }

  /** Destroys an instance without keeping an archive (see `retire` for destroying with one). */
  async destroy(rawId: unknown): Promise<InstanceRecord> {
    const id = parseInstanceId(rawId);
    return this.#locks.run(id, async () => {
      const operation = this.#catalog.beginDestroy(id, {});
      crashPoint('destroy:journaled');
      await this.#removeFiles(operation);
      const record = this.#catalog.completeDestroy(operation);
      crashPoint('destroy:committed');
      return record;
    });
  }

  async #removeFiles(operation: Operation): Promise<void> {
    const id = operation.instance_id as InstanceId;
    const file = this.#layout.fileOf(id);
    const retiring = this.#layout.retiringFileOf(id, operation.id);
    await this.#cache.evict(file);
    if (fs.existsSync(file)) {
      fs.renameSync(file, retiring);
      fsyncPath(path.dirname(file));
    }
    crashPoint('destroy:file-moved');
    removeFileAndSidecars(retiring);
    removeInstanceFile(file);
    crashPoint('destroy:file-removed');
    // A reader that opened the file before it moved holds a handle to the old inode: drop it.
    await this.#cache.evict(file);
  }

  /** Finishes or undoes what a crash interrupted. Reads only the journal; never scans instance files. */
  async recover(): Promise<RecoveryReport> {
    const report: RecoveryReport = { createsRolledBack: [], destroysCompleted: [], retiresRolledBack: [], retiresCompleted: [] };
    for (const operation of this.#catalog.pendingOperations()) {
      await nextTurn(); // keep /healthz answering through a long recovery
      await this.#locks.run(operation.instance_id, async () => {
        if (operation.kind === 'create') {
          this.#undoCreate(operation);
          report.createsRolledBack.push(operation.instance_id);
        } else if (operation.kind === 'retire') {
          // Before its archive was verified and recorded the instance is still whole: back to ACTIVE.
          // After, its final state stands and only the file removal is left to finish.
          const record = this.#catalog.getInstance(operation.instance_id);
          if (record?.state === 'ARCHIVING') {
            this.#catalog.rollbackRetire(operation);
            report.retiresRolledBack.push(operation.instance_id);
          } else {
            await this.#removeRetiredFile(operation);
            this.#catalog.finishOperation(operation);
            report.retiresCompleted.push(operation.instance_id);
          }
        } else {
          await this.#removeFiles(operation);
          this.#catalog.completeDestroy(operation);
          report.destroysCompleted.push(operation.instance_id);
        }
      });
    }
    return report;
  }

  cacheStats(): HandleCacheStats {
    const stats = this.#cache.stats();
    return { ...stats, hits: stats.hits + this.#preparedHits };
  }

  /** Closes every instance handle once its current users are done, and ends the migration workers. */
  async close(): Promise<void> {
    this.#dropPrepared();
    await this.#cache.close();
    await this.#runner.close();
  }
}
