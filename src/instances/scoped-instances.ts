import type { InstanceFilter, InstanceQuery, InstanceRecord, Labels } from '../catalog/index.js';
import { FleetqlError, instanceNotFound } from '../errors.js';
import { appliedMigrations, type AppliedMigration } from '../migrations/index.js';
import type { SqliteDatabase } from '../storage/index.js';
import { parseInstanceId } from './instance-id.js';
import type { InstanceService, later, PreparedReads, ReadGeneration } from './instance-service.js';

/**
 * What one principal may touch. `instances` undefined: every instance. Otherwise only the
 * instances named by id or whose labels contain every given label (either is enough).
 */
export interface InstanceScope {
  readonly instances?: { readonly ids: readonly string[]; readonly labels?: Labels | undefined } | undefined;
  /** Data mutations (insert/update/delete rows) allowed. */
  readonly write: boolean;
  /** Lifecycle operations (create, relabel, destroy) allowed. */
  readonly lifecycle: boolean;
}

export const unrestricted: InstanceScope = Object.freeze({ write: true, lifecycle: true });

/** Instances listed to be read one after another (a fleet's targets), and when the listing began. */
export interface Selection {
  readonly records: readonly InstanceRecord[];
  /** Passed back to `readNow`: it tells which cached handles have been open since the listing. */
  readonly mark: number;
}

/** Runs work on one instance's open handle; `write` says the work changes data. */
export interface InstanceAccess {
  withInstance<T>(rawId: unknown, fn: (db: SqliteDatabase, record: InstanceRecord) => T | Promise<T>, options?: { write?: boolean }): Promise<T>;
  /** A read by `withInstance`, answered in this turn when nothing must be waited for (see InstanceService.withInstanceNow). */
  withInstanceNow<T>(rawId: unknown, fn: (db: SqliteDatabase, record: InstanceRecord) => T): T | Promise<T>;
  /**
   * A read of one instance of a `Selection` made by this access, run at once on its warm handle
   * (see InstanceService.readNow), or `later` when it must go through the catalog (`withInstanceNow`).
   */
  readNow<T>(record: InstanceRecord, mark: number, fn: (db: SqliteDatabase, record: InstanceRecord) => T): T | typeof later;
  /** Reads a fan-out prepared for a question, kept for the next asking (see InstanceService.preparedReads); absent: none are kept. */
  prepared?: PreparedReadsAccess;
}

/** See InstanceService.preparedReads and keepPreparedReads. */
export interface PreparedReadsAccess {
  readonly generation: ReadGeneration;
  get(question: string, records: readonly InstanceRecord[]): PreparedReads | undefined;
  keep(question: string, records: readonly InstanceRecord[], reads: readonly unknown[], generation: ReadGeneration): void;
  countHits(count: number): void;
}

/** The scope as a catalog filter, so listings and fleet pruning apply it in SQL. */
function scopeFilter(instances: NonNullable<InstanceScope['instances']>): InstanceFilter {
  const byId: InstanceFilter = { id: { _in: [...instances.ids] } };
  return instances.labels === undefined ? byId : { _or: [byId, { labels: { _contains: { ...instances.labels } } }] };
}

/**
 * The instance service as one principal sees it, made per request. Every lookup, listing, count
 * and handle goes through the scope, so no resolver can forget it: an instance outside the scope
 * answers exactly as an id that does not exist (INSTANCE_NOT_FOUND), whatever its state.
 */
export class ScopedInstances implements InstanceAccess {
  readonly #service: InstanceService;
  readonly #scope: InstanceScope;
  readonly #filter: InstanceFilter | undefined;
  readonly #ids: ReadonlySet<string>;

  constructor(service: InstanceService, scope: InstanceScope) {
    this.#service = service;
    this.#scope = scope;
    this.#filter = scope.instances === undefined ? undefined : scopeFilter(scope.instances);
    this.#ids = new Set(scope.instances?.ids ?? []);
  }

  get head(): number {
    return this.#service.head;
  }

  /** Whether the record is inside the scope (the same rule as the catalog filter). */
  #allows(record: InstanceRecord): boolean {
    const instances = this.#scope.instances;
    if (instances === undefined) return true;
    if (this.#ids.has(record.id)) return true;
    const labels = instances.labels;
    return labels !== undefined && Object.entries(labels).every(([key, value]) => record.labels[key] === value);
  }

  #where(where: InstanceFilter | undefined): InstanceFilter | undefined {
    if (this.#filter === undefined) return where;
    return where === undefined ? this.#filter : { _and: [where, this.#filter] };
  }

  get(rawId: unknown): InstanceRecord {
    const id = parseInstanceId(rawId);
    let record: InstanceRecord;
    try {
      record = this.#service.get(id);
    } catch (error) {
      throw notFoundAsSuch(id, error);
    }
    if (!this.#allows(record)) throw instanceNotFound(id);
    return record;
  }

  list(query: InstanceQuery): readonly InstanceRecord[] {
    return this.#service.list({ ...query, where: this.#where(query.where) });
  }

  /** `list`, as a `Selection` for `readNow`. */
  select(query: InstanceQuery): Selection {
    const mark = this.#service.readMark;
    return { records: this.list(query), mark };
  }

  count(where?: InstanceFilter): number {
    return this.#service.count(this.#where(where));
  }

  countByVersion(): Map<number, number> {
    if (this.#filter === undefined) return this.#service.countByVersion();
    const counts = new Map<number, number>();
    for (const record of this.list({})) counts.set(record.schema_version, (counts.get(record.schema_version) ?? 0) + 1);
    return counts;
  }

  sizeBytes(record: InstanceRecord): number {
    return this.#allows(record) ? this.#service.sizeBytes(record) : 0;
  }

  async withInstance<T>(rawId: unknown, fn: (db: SqliteDatabase, record: InstanceRecord) => T | Promise<T>, options: { write?: boolean } = {}): Promise<T> {
    const id = parseInstanceId(rawId);
    try {
      // One catalog read: the scope is checked on the record before its state is.
      return await this.#service.withInstance(id, fn, { admit: this.#admit(id, options.write === true) });
    } catch (error) {
      throw notFoundAsSuch(id, error);
    }
  }

  withInstanceNow<T>(rawId: unknown, fn: (db: SqliteDatabase, record: InstanceRecord) => T): T | Promise<T> {
    const id = parseInstanceId(rawId);
    let result: T | Promise<T>;
    try {
      result = this.#service.withInstanceNow(id, fn, { admit: this.#admit(id, false) });
    } catch (error) {
      throw notFoundAsSuch(id, error);
    }
    return result instanceof Promise ? result.catch((error: unknown) => Promise.reject(notFoundAsSuch(id, error))) : result;
  }

  /** The check of a record just read from the catalog, before its state is looked at: in scope, and allowed to write if it will. */
  #admit(id: string, write: boolean): (record: InstanceRecord) => void {
    return (record) => {
      if (!this.#allows(record)) throw instanceNotFound(id);
      if (write && !this.#scope.write) throw forbidden('this principal may not change data');
    };
  }

  /**
   * Prepared reads are shared by every principal: they are found by the records of a selection,
   * which this principal's scope made (the same records mean the same instances, all in scope).
   */
  get prepared(): PreparedReadsAccess {
    const service = this.#service;
    return {
      get generation() {
        return service.readGeneration;
      },
      get: (question, records) => service.preparedReads(question, records),
      keep: (question, records, reads, generation) => service.keepPreparedReads(question, records, reads, generation),
      countHits: (count) => service.countPreparedHits(count),
    };
  }

  readNow<T>(record: InstanceRecord, mark: number, fn: (db: SqliteDatabase, record: InstanceRecord) => T): T | typeof later {
    // The selection applied the scope in SQL; checking the record again costs a set lookup.
    if (!this.#allows(record)) throw instanceNotFound(record.id);
    return this.#service.readNow(record, mark, fn);
  }

  appliedMigrations(rawId: unknown): Promise<AppliedMigration[]> {
    return this.withInstance(rawId, (db) => appliedMigrations(db));
  }

  #lifecycle(): InstanceService {
    if (!this.#scope.lifecycle || this.#scope.instances !== undefined) throw forbidden('this principal may not create, relabel or destroy instances');
    return this.#service;
  }

  create(rawId: unknown, rawLabels: unknown): Promise<InstanceRecord> {
    return this.#lifecycle().create(rawId, rawLabels);
  }

  setLabels(rawId: unknown, rawLabels: unknown): Promise<InstanceRecord> {
    return this.#lifecycle().setLabels(rawId, rawLabels);
  }

  destroy(rawId: unknown): Promise<InstanceRecord> {
    return this.#lifecycle().destroy(rawId);
  }
}

/** An instance not found answers as one outside the scope does (the same message, whatever the state). */
function notFoundAsSuch(id: string, error: unknown): unknown {
  return error instanceof FleetqlError && error.code === 'INSTANCE_NOT_FOUND' ? instanceNotFound(id) : error;
}

function forbidden(message: string): FleetqlError {
  return new FleetqlError('FORBIDDEN', message);
}
