import fs from 'node:fs';
import path from 'node:path';
import { FleetqlError, instanceNotFound } from '../errors.js';
import { SqliteDatabase } from '../storage/index.js';
import type {
  Catalog,
  InstanceFilter,
  InstanceQuery,
  InstanceRecord,
  InstanceState,
  Labels,
  Operation,
  OperationKind,
  RecordedMigration,
} from './catalog.js';
import { compileInstanceFilter, compileInstanceOrder, filterMentionsState } from './instance-filter.js';
import { ArchiveRecords, archiveSchema } from './archive-records.js';
import { RolloutStore, rolloutSchema } from './rollout-store.js';

/** The catalog's own schema, versioned with PRAGMA user_version. Append steps; never edit one. */
const catalogSchema: readonly string[] = [
  `CREATE TABLE instances (
     id TEXT PRIMARY KEY,
     labels TEXT NOT NULL DEFAULT '{}',
     state TEXT NOT NULL,
     schema_version INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   ) STRICT;
   CREATE INDEX instances_state ON instances (state, id);
   CREATE INDEX instances_created_at ON instances (created_at);
   CREATE TABLE instance_labels (
     instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
     key TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (instance_id, key)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX instance_labels_by_value ON instance_labels (key, value, instance_id);
   CREATE TABLE operations (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     kind TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'pending',
     detail TEXT NOT NULL DEFAULT '{}',
     started_at TEXT NOT NULL,
     finished_at TEXT
   ) STRICT;
   CREATE INDEX operations_pending ON operations (id) WHERE status = 'pending';
   CREATE TABLE migrations (
     version INTEGER PRIMARY KEY,
     name TEXT NOT NULL,
     checksum TEXT NOT NULL,
     recorded_at TEXT NOT NULL
   ) STRICT;`,
  rolloutSchema,
  archiveSchema,
  // Metrics count instances by state and version on every scrape: a covering index keeps it a scan
  // of small index entries (100,000 instances, on a busy 2-core machine: 12–40 ms, against
  // 100–900 ms reading every row).
  `CREATE INDEX instances_state_version ON instances (state, schema_version);`,
];

interface OperationRow {
  id: number;
  kind: OperationKind;
  instance_id: string;
  started_at: string;
  detail: string;
}

/** Records kept at most (dropped together beyond: a fleet this large re-reads them as it goes). */
const maxCachedRecords = 200_000;
/**
 * Records kept in listings at most, the least recently used listings dropped first: a fleet query
 * lists its selection in pages of 1,000, so a selection of up to this many records stays whole
 * (bounded by records, not listings: a count of listings would drop the first pages of a large
 * selection before its last ones, and no page would ever be found).
 */
const maxListedRecords = 200_000;
/** How soon a change committed by another connection to the catalog is seen by instance lookups. */
export const externalCheckMs = 50;

const instanceColumns = 'instances.id, instances.labels, instances.state, instances.schema_version, instances.created_at, instances.updated_at';

/**
 * Parsed label sets by their canonical text: a fleet selection lists thousands of records, most
 * sharing a few label sets, and the parsed sets are frozen, so one object serves them all.
 * Bounded: dropped whole when it grows past a large fleet's worth.
 */
const parsedLabels = new Map<string, Labels>();

function labelsOf(text: string): Labels {
  let labels = parsedLabels.get(text);
  if (labels === undefined) {
    if (parsedLabels.size >= 100_000) parsedLabels.clear();
    labels = Object.freeze(JSON.parse(text) as Labels);
    parsedLabels.set(text, labels);
  }
  return labels;
}

/** A record from a raw row of `instanceColumns` (arrays: no per-row object from the driver). */
function toRecord(row: unknown[]): InstanceRecord {
  return Object.freeze({
    id: row[0] as string,
    labels: labelsOf(row[1] as string),
    state: row[2] as InstanceState,
    schema_version: Number(row[3]),
    created_at: row[4] as string,
    updated_at: row[5] as string,
  });
}

function toOperation(row: OperationRow): Operation {
  return Object.freeze({ ...row, detail: JSON.parse(row.detail) as Record<string, unknown> });
}

/** Labels are stored as canonical JSON (sorted keys) so equal label sets are equal text. */
function canonicalLabels(labels: Labels): string {
  return JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

export interface LibsqlCatalogOptions {
  busyTimeoutMs: number;
  now?: () => string;
}

/** The embedded catalog: one libSQL file in WAL mode with full fsync, since the journal must survive a crash. */
export class LibsqlCatalog implements Catalog {
  readonly #db: SqliteDatabase;
  readonly #now: () => string;
  /** Rollouts and the instances they move, in the same catalog file. */
  readonly rollouts: RolloutStore;
  /** Verified archives. */
  readonly archives: ArchiveRecords;
  /**
   * Instance records by id (undefined: no such row), read once and kept while nothing changed the
   * catalog: a request on one instance then reads no catalog row at all. Valid while this
   * connection has written nothing since (`writeCount`, which also counts every transaction's end)
   * and, for changes committed by another connection (an operator's sqlite3), until the next
   * `PRAGMA data_version` check, made at most every `externalCheckMs`.
   */
  readonly #records = new Map<string, InstanceRecord | undefined>();
  /**
   * Listings by their query, under the same rule as the records: a fleet query lists the same
   * thousands of records query after query (at 10,000 instances ~40 ms and as many objects each time).
   */
  readonly #listings = new Map<string, readonly InstanceRecord[]>();
  /** Records in the kept listings. */
  #listed = 0;
  #recordsAtWrite = -1;
  #dataVersion: unknown;
  #checkedAt = 0;

  private constructor(db: SqliteDatabase, now: () => string) {
    this.#db = db;
    this.#now = now;
    this.rollouts = new RolloutStore(db, now);
    this.archives = new ArchiveRecords(db);
  }

  /** Opens (creating if needed) the catalog at `file` and brings its own schema up to date. */
  static open(file: string, options: LibsqlCatalogOptions): LibsqlCatalog {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = SqliteDatabase.open(file, { journalMode: 'wal', busyTimeoutMs: options.busyTimeoutMs, synchronous: 'full' });
    try {
      const version = Number((db.get<{ user_version: number }>('PRAGMA user_version') ?? { user_version: 0 }).user_version);
      if (version > catalogSchema.length) {
        throw new FleetqlError('CONFIG_INVALID', `the catalog at ${file} was written by a newer fleetql (catalog schema ${version})`);
      }
      for (let step = version; step < catalogSchema.length; step++) {
        db.transaction(() => {
          db.exec(catalogSchema[step]!);
          db.exec(`PRAGMA user_version = ${step + 1}`);
        });
      }
    } catch (error) {
      db.close();
      throw error;
    }
    return new LibsqlCatalog(db, options.now ?? (() => new Date().toISOString()));
  }

  getInstance(id: string): InstanceRecord | undefined {
    this.#validateRecords();
    if (this.#records.has(id)) return this.#records.get(id);
    const row = this.#db.row(`SELECT ${instanceColumns} FROM instances WHERE id = ?`, [id]);
    const record = row === undefined ? undefined : toRecord(row);
    // A read inside a transaction needs no guard: the transaction's end (an exec) moves writeCount.
    if (this.#records.size >= maxCachedRecords) this.#records.clear();
    this.#records.set(id, record);
    return record;
  }

  #validateRecords(): void {
    const writes = this.#db.writeCount;
    const now = performance.now();
    if (now - this.#checkedAt >= externalCheckMs) {
      this.#checkedAt = now;
      const version = this.#db.row('PRAGMA data_version')?.[0];
      if (version !== this.#dataVersion) {
        this.#dataVersion = version;
        this.#dropKept();
      }
    }
    if (writes !== this.#recordsAtWrite) {
      this.#recordsAtWrite = writes;
      this.#dropKept();
    }
  }

  #dropKept(): void {
    this.#records.clear();
    this.#listings.clear();
    this.#listed = 0;
  }

  #where(where: InstanceFilter | undefined, params: unknown[]): string {
    const predicate = compileInstanceFilter(where, params);
    return filterMentionsState(where) ? predicate : `(${predicate}) AND instances.state <> 'DESTROYED'`;
  }

  listInstances(query: InstanceQuery): readonly InstanceRecord[] {
    this.#validateRecords();
    const key = JSON.stringify(query, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value));
    const cached = this.#listings.get(key);
    if (cached !== undefined) {
      // Least recently used last: the first key is the one to drop.
      this.#listings.delete(key);
      this.#listings.set(key, cached);
      return cached;
    }
    const params: unknown[] = [];
    const where = this.#where(query.where, params);
    params.push(query.limit ?? -1, query.offset ?? 0);
    const records = Object.freeze(
      this.#db.rows(`SELECT ${instanceColumns} FROM instances WHERE ${where} ORDER BY ${compileInstanceOrder(query.orderBy)} LIMIT ? OFFSET ?`, params).map(toRecord),
    );
    this.#listings.set(key, records);
    this.#listed += records.length;
    // The same rows as `getInstance` would read, under the same rule: a cold fan-out then looks
    // each selected instance up again (see InstanceService.withInstance) without a catalog read.
    if (this.#records.size + records.length <= maxCachedRecords) for (const record of records) this.#records.set(record.id, record);
    for (const [oldest, listing] of this.#listings) {
      if (this.#listed <= maxListedRecords) break;
      this.#listings.delete(oldest);
      this.#listed -= listing.length;
    }
    return records;
  }

  countInstances(where?: InstanceFilter): number {
    const params: unknown[] = [];
    const row = this.#db.get<{ n: number }>(`SELECT count(*) AS n FROM instances WHERE ${this.#where(where, params)}`, params);
    return Number(row?.n ?? 0);
  }

  countByStateAndVersion(): Array<{ state: InstanceState; schema_version: number; count: number }> {
    return this.#db
      .all<{ state: InstanceState; schema_version: number | bigint; n: number | bigint }>(`SELECT state, schema_version, count(*) AS n FROM instances GROUP BY state, schema_version`)
      .map((row) => ({ state: row.state, schema_version: Number(row.schema_version), count: Number(row.n) }));
  }

  countByVersion(): Map<number, number> {
    const rows = this.#db.all<{ schema_version: number; n: number }>(
      `SELECT schema_version, count(*) AS n FROM instances WHERE state NOT IN ('DESTROYED', 'CREATING') GROUP BY schema_version`,
    );
    return new Map(rows.map((row) => [Number(row.schema_version), Number(row.n)]));
  }

  #journal(kind: OperationKind, instanceId: string, detail: Record<string, unknown>): Operation {
    const startedAt = this.#now();
    const result = this.#db.run(`INSERT INTO operations (kind, instance_id, detail, started_at) VALUES (?, ?, ?, ?)`, [
      kind,
      instanceId,
      JSON.stringify(detail),
      startedAt,
    ]);
    return Object.freeze({ id: Number(result.lastInsertRowid), kind, instance_id: instanceId, started_at: startedAt, detail });
  }

  #finish(operation: Operation, status: 'done' | 'rolled_back'): void {
    const result = this.#db.run(`UPDATE operations SET status = ?, finished_at = ? WHERE id = ? AND status = 'pending'`, [status, this.#now(), operation.id]);
    if (result.changes !== 1) throw new Error(`operation ${operation.id} is not pending`);
  }

  #writeLabels(id: string, labels: Labels): void {
    this.#db.run(`DELETE FROM instance_labels WHERE instance_id = ?`, [id]);
    for (const [key, value] of Object.entries(labels)) {
      this.#db.run(`INSERT INTO instance_labels (instance_id, key, value) VALUES (?, ?, ?)`, [id, key, value]);
    }
  }

  #require(id: string): InstanceRecord {
    const record = this.getInstance(id);
    if (record === undefined) throw new Error(`catalog lost instance ${id} inside a transaction`);
    return record;
  }

  beginCreate(id: string, labels: Labels, detail: Record<string, unknown>, replaceable: readonly InstanceState[] = ['DESTROYED']): Operation {
    return this.#db.transaction(() => {
      const existing = this.getInstance(id);
      if (existing !== undefined && !replaceable.includes(existing.state)) {
        throw new FleetqlError('INSTANCE_EXISTS', `instance "${id}" already exists`, { extensions: { instance_id: id } });
      }
      const now = this.#now();
      // A destroyed tombstone (or, for a restore, an archived one) gives its id back; the journal
      // keeps it, so a creation that does not finish puts it back.
      if (existing !== undefined) detail = { ...detail, previous: existing };
      this.#db.run(`DELETE FROM instances WHERE id = ?`, [id]);
      this.#db.run(`INSERT INTO instances (id, labels, state, schema_version, created_at, updated_at) VALUES (?, ?, 'CREATING', 0, ?, ?)`, [
        id,
        canonicalLabels(labels),
        now,
        now,
      ]);
      this.#writeLabels(id, labels);
      return this.#journal('create', id, detail);
    });
  }

  completeCreate(operation: Operation, schemaVersion: number): InstanceRecord {
    return this.#db.transaction(() => {
      this.#db.run(`UPDATE instances SET state = 'ACTIVE', schema_version = ?, updated_at = ? WHERE id = ? AND state = 'CREATING'`, [
        schemaVersion,
        this.#now(),
        operation.instance_id,
      ]);
      this.#finish(operation, 'done');
      return this.#require(operation.instance_id);
    });
  }

  rollbackCreate(operation: Operation): void {
    this.#db.transaction(() => {
      const removed = this.#db.run(`DELETE FROM instances WHERE id = ? AND state = 'CREATING'`, [operation.instance_id]).changes;
      const previous = operation.detail['previous'] as InstanceRecord | undefined;
      if (removed === 1 && previous !== undefined) {
        this.#db.run(`INSERT INTO instances (id, labels, state, schema_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`, [
          previous.id,
          canonicalLabels(previous.labels),
          previous.state,
          previous.schema_version,
          previous.created_at,
          previous.updated_at,
        ]);
        this.#writeLabels(previous.id, previous.labels);
      }
      this.#finish(operation, 'rolled_back');
    });
  }

  beginDestroy(id: string, detail: Record<string, unknown>): Operation {
    return this.#db.transaction(() => {
      const existing = this.getInstance(id);
      if (existing === undefined || existing.state === 'DESTROYED' || existing.state === 'CREATING') throw instanceNotFound(id);
      if (existing.state === 'DESTROYING') throw new FleetqlError('INSTANCE_BUSY', `instance "${id}" is being destroyed`, { extensions: { instance_id: id } });
      this.#db.run(`UPDATE instances SET state = 'DESTROYING', updated_at = ? WHERE id = ?`, [this.#now(), id]);
      return this.#journal('destroy', id, { ...detail, previous_state: existing.state });
    });
  }

  completeDestroy(operation: Operation): InstanceRecord {
    return this.#db.transaction(() => {
      this.#db.run(`UPDATE instances SET state = 'DESTROYED', updated_at = ? WHERE id = ? AND state = 'DESTROYING'`, [this.#now(), operation.instance_id]);
      this.#finish(operation, 'done');
      return this.#require(operation.instance_id);
    });
  }

  beginRetire(id: string, detail: Record<string, unknown>): Operation {
    return this.#db.transaction(() => {
      const existing = this.getInstance(id);
      if (existing === undefined || existing.state === 'DESTROYED' || existing.state === 'CREATING') throw instanceNotFound(id);
      if (existing.state !== 'ACTIVE') {
        throw new FleetqlError('INSTANCE_UNAVAILABLE', `instance "${id}" is ${existing.state.toLowerCase()}`, { extensions: { instance_id: id } });
      }
      this.#db.run(`UPDATE instances SET state = 'ARCHIVING', updated_at = ? WHERE id = ?`, [this.#now(), id]);
      return this.#journal('retire', id, detail);
    });
  }

  rollbackRetire(operation: Operation): InstanceRecord {
    return this.#db.transaction(() => {
      this.#db.run(`UPDATE instances SET state = 'ACTIVE', updated_at = ? WHERE id = ? AND state = 'ARCHIVING'`, [this.#now(), operation.instance_id]);
      this.#finish(operation, 'rolled_back');
      return this.#require(operation.instance_id);
    });
  }

  markRetired(operation: Operation, state: 'ARCHIVED' | 'DESTROYED', archiveId: string): InstanceRecord {
    return this.#db.transaction(() => {
      this.#db.run(`UPDATE instances SET state = ?, updated_at = ? WHERE id = ? AND state = 'ARCHIVING'`, [state, this.#now(), operation.instance_id]);
      this.#db.run(`UPDATE operations SET detail = json_set(detail, '$.archive_id', ?) WHERE id = ?`, [archiveId, operation.id]);
      return this.#require(operation.instance_id);
    });
  }

  finishOperation(operation: Operation): void {
    this.#finish(operation, 'done');
  }

  pendingOperations(): Operation[] {
    return this.#db
      .all<OperationRow>(`SELECT id, kind, instance_id, started_at, detail FROM operations WHERE status = 'pending' ORDER BY id`)
      .map(toOperation);
  }

  setSchemaVersion(id: string, version: number): InstanceRecord {
    return this.#db.transaction(() => {
      this.#db.run(`UPDATE instances SET schema_version = ?, updated_at = ? WHERE id = ?`, [version, this.#now(), id]);
      return this.#require(id);
    });
  }

  setLabels(id: string, labels: Labels): InstanceRecord {
    return this.#db.transaction(() => {
      const existing = this.getInstance(id);
      if (existing === undefined || existing.state === 'DESTROYED' || existing.state === 'CREATING') throw instanceNotFound(id);
      this.#db.run(`UPDATE instances SET labels = ?, updated_at = ? WHERE id = ?`, [canonicalLabels(labels), this.#now(), id]);
      this.#writeLabels(id, labels);
      return this.#require(id);
    });
  }

  recordedMigrations(): RecordedMigration[] {
    return this.#db
      .all<RecordedMigration>(`SELECT version, name, checksum FROM migrations ORDER BY version`)
      .map((row) => ({ ...row, version: Number(row.version) }));
  }

  recordMigrations(migrations: readonly RecordedMigration[]): void {
    this.#db.transaction(() => {
      for (const migration of migrations) {
        this.#db.run(`INSERT INTO migrations (version, name, checksum, recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT (version) DO NOTHING`, [
          migration.version,
          migration.name,
          migration.checksum,
          this.#now(),
        ]);
      }
    });
  }

  close(): void {
    this.#db.close();
  }
}
