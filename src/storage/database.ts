import Database from 'libsql';
import { descriptorTracker } from './descriptor-tracker.js';

export type JournalMode = 'delete' | 'wal';

export interface OpenOptions {
  /**
   * Journal mode set when the file is opened (it persists in the file for WAL). `memory` is for
   * files that are not live yet: a failed statement still rolls back, but nothing is synced.
   */
  journalMode: JournalMode | 'memory';
  busyTimeoutMs: number;
  /**
   * `full` for the catalog and the rollback journal; `normal` is crash-safe (not power-safe) under
   * WAL; `off` only for a file being built aside, which is synced once before it is placed.
   */
  synchronous?: 'full' | 'normal' | 'off';
  /** Return INTEGER columns as bigint so no value loses precision. */
  safeIntegers?: boolean;
  /**
   * Rollback journal only: keep the read lock from one read to the next (`locking_mode =
   * EXCLUSIVE` between writes). Otherwise every read takes the file's lock, reads its change
   * counter to see whether another connection wrote it, and releases the lock: measured on a warm
   * fan-out over 1,000 files, that was half of each read. Other connections may still read the
   * file; one that writes it waits (SQLITE_BUSY after its busy timeout) until this one is closed or
   * writes. A write here runs with NORMAL locking, so its journal is deleted at commit, the lock
   * is released and the change counter moves, as without this. For a connection that is the only
   * writer of its file (the handle cache, whose handles are closed before a migration's own
   * connection opens the file).
   */
  holdReadLock?: boolean;
}

export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

type Statement = ReturnType<InstanceType<typeof Database>['prepare']>;
type StatementUse = 'all' | 'get' | 'run' | 'rawAll' | 'rawGet';

/**
 * Statements kept per connection and way of reading: past this the oldest is dropped (and prepared
 * again if asked for). Queries are open-ended, and a fleet question asked again is a new text per
 * value (see query/literals.ts), so without a bound every handle's cache would only grow.
 */
const maxStatementsPerUse = 64;

/** Process-wide counters, for metrics and for tests that bound how many statements a request runs. */
export const storageStats = { statementsExecuted: 0 };

/** A libSQL error translated where it enters: the SQLite result code stays, the SQL does not leave. */
export class StorageError extends Error {
  readonly sqliteCode: string;
  constructor(message: string, sqliteCode: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'StorageError';
    this.sqliteCode = sqliteCode;
  }
  /** The file is not a database, is damaged, or cannot be opened. */
  get damaged(): boolean {
    return /^SQLITE_(CORRUPT|NOTADB|CANTOPEN|IOERR)/.test(this.sqliteCode);
  }
  get constraint(): boolean {
    return this.sqliteCode.startsWith('SQLITE_CONSTRAINT');
  }
}

function translate(error: unknown): unknown {
  if (error instanceof Error && typeof (error as unknown as { code?: unknown }).code === 'string') {
    const code = (error as unknown as { code: string }).code;
    if (code.startsWith('SQLITE_')) return new StorageError(error.message, code, error);
  }
  return error;
}

/**
 * One open libSQL file with its prepared statements cached. `close()` drops the statements with
 * the connection: the driver frees a file's descriptors only once its statements are collected,
 * which `descriptorTracker` accounts for (see ../../FACTS in shared/ and handle-cache.ts).
 */
export class SqliteDatabase {
  readonly path: string;
  readonly descriptors: number;
  #db: InstanceType<typeof Database> | undefined;
  // One statement per SQL text and way of reading it: the driver's `get` on a statement last run
  // by `all` returns a row of that earlier run (libsql 0.5.29), so the two never share one. Keyed
  // by the SQL text itself (no derived key string): V8 keeps a string's hash on the string, so a
  // caller reusing one SQL string across instances pays no hashing.
  readonly #statements: Record<StatementUse, Map<string, Statement>> = { all: new Map(), get: new Map(), run: new Map(), rawAll: new Map(), rawGet: new Map() };
  readonly #safeIntegers: boolean;
  #writes = 0;
  readonly #release: { live: number; closed: boolean; descriptors: number };
  readonly #holdsReadLock: boolean;

  private constructor(path: string, db: InstanceType<typeof Database>, descriptors: number, safeIntegers: boolean, holdsReadLock: boolean) {
    this.path = path;
    this.#db = db;
    this.descriptors = descriptors;
    this.#safeIntegers = safeIntegers;
    this.#holdsReadLock = holdsReadLock;
    this.#release = { live: 0, closed: false, descriptors };
  }

  static open(path: string, options: OpenOptions): SqliteDatabase {
    let db: InstanceType<typeof Database>;
    try {
      db = new Database(path);
    } catch (error) {
      throw translate(error);
    }
    const holdsReadLock = options.holdReadLock === true && options.journalMode === 'delete';
    try {
      const synchronous = options.synchronous ?? 'full';
      db.exec(
        `PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs)}; PRAGMA foreign_keys = ON; ` +
          `PRAGMA journal_mode = ${options.journalMode.toUpperCase()}; PRAGMA synchronous = ${synchronous.toUpperCase()};` +
          (holdsReadLock ? ' PRAGMA locking_mode = EXCLUSIVE;' : ''),
      );
    } catch (error) {
      db.close();
      throw translate(error);
    }
    return new SqliteDatabase(path, db, options.journalMode === 'wal' ? 3 : 1, options.safeIntegers ?? false, holdsReadLock);
  }

  /** Statements cached on this connection now, every way of reading counted (bounded: see maxStatementsPerUse). */
  get statementsCached(): number {
    let count = 0;
    for (const statements of Object.values(this.#statements)) count += statements.size;
    return count;
  }

  get isOpen(): boolean {
    return this.#db !== undefined;
  }

  #statement(sql: string, use: StatementUse): Statement {
    const statements = this.#statements[use];
    const cached = statements.get(sql);
    if (cached !== undefined) return cached;
    const db = this.#db;
    if (db === undefined) throw new Error(`database ${this.path} is closed`);
    let statement: Statement;
    try {
      statement = db.prepare(sql);
    } catch (error) {
      throw translate(error);
    }
    if (this.#safeIntegers) statement.safeIntegers(true);
    if (use === 'rawAll' || use === 'rawGet') statement.raw(true);
    this.#release.live += 1;
    descriptorTracker.watchStatement(statement, this.#release);
    statements.set(sql, statement);
    if (statements.size > maxStatementsPerUse) statements.delete(statements.keys().next().value!);
    return statement;
  }

  /** Runs `statement` the way `use` reads (one place counts executions and translates errors). */
  #execute(statement: Statement, use: 'all' | 'get', params: readonly unknown[]): unknown {
    storageStats.statementsExecuted += 1;
    try {
      return use === 'all' ? statement.all(params as unknown[]) : (statement.get(params as unknown[]) ?? undefined);
    } catch (error) {
      throw translate(error);
    }
  }

  // Parameters go to the driver as one array: spread, a single null or Uint8Array would be taken for named parameters.
  all<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Row[] {
    return this.#execute(this.#statement(sql, 'all'), 'all', params) as Row[];
  }

  /** Rows as arrays in select-list order: no per-row objects, and no driver metadata mixed into rows. */
  rows(sql: string, params: readonly unknown[] = []): unknown[][] {
    return this.#execute(this.#statement(sql, 'rawAll'), 'all', params) as unknown[][];
  }

  /** The first row as an array (one native call: no iterator, no result list), or undefined. */
  row(sql: string, params: readonly unknown[] = []): unknown[] | undefined {
    return this.#execute(this.#statement(sql, 'rawGet'), 'get', params) as unknown[] | undefined;
  }

  /**
   * `row` of one SQL text with its statement found now: a fan-out finds the statements of a batch
   * of instances first and then runs them back to back, with little else between two driver calls.
   */
  rowReader(sql: string): (params: readonly unknown[]) => unknown[] | undefined {
    const statement = this.#statement(sql, 'rawGet');
    return (params) => this.#execute(statement, 'get', params) as unknown[] | undefined;
  }

  /** `rows` of one SQL text with its statement found now (see rowReader). */
  rowsReader(sql: string): (params: readonly unknown[]) => unknown[][] {
    const statement = this.#statement(sql, 'rawAll');
    return (params) => this.#execute(statement, 'all', params) as unknown[][];
  }

  get<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Row | undefined {
    return this.#execute(this.#statement(sql, 'get'), 'get', params) as Row | undefined;
  }

  /**
   * Calls of `run` and `exec` on this connection so far (every statement that may change data,
   * and every transaction's begin and end): a value cached from a read is current while it is unchanged.
   */
  get writeCount(): number {
    return this.#writes;
  }

  run(sql: string, params: readonly unknown[] = []): RunResult {
    return this.#writing(() => {
      this.#writes += 1;
      const statement = this.#statement(sql, 'run');
      storageStats.statementsExecuted += 1;
      try {
        const result = statement.run(params as unknown[]);
        return { changes: Number(result.changes), lastInsertRowid: result.lastInsertRowid };
      } catch (error) {
        throw translate(error);
      }
    });
  }

  /** Runs SQL text of one or more statements without preparing (DDL, migrations, pragmas). */
  exec(sql: string): void {
    this.#writing(() => this.#exec(sql));
  }

  #exec(sql: string): void {
    this.#writes += 1;
    const db = this.#db;
    if (db === undefined) throw new Error(`database ${this.path} is closed`);
    try {
      db.exec(sql);
    } catch (error) {
      throw translate(error);
    }
  }

  /** Runs `fn`, which may write, with NORMAL locking on a connection that holds its read lock (see OpenOptions.holdReadLock). */
  #writing<T>(fn: () => T): T {
    if (!this.#holdsReadLock || this.inTransaction) return fn();
    this.#exec('PRAGMA locking_mode = NORMAL');
    try {
      return fn();
    } finally {
      if (this.#db !== undefined) this.#exec('PRAGMA locking_mode = EXCLUSIVE');
    }
  }

  get inTransaction(): boolean {
    return this.#db?.inTransaction ?? false;
  }

  /** Runs `fn` in one transaction: committed when it returns, rolled back when it throws. */
  transaction<T>(fn: () => T, mode: 'deferred' | 'immediate' = 'immediate'): T {
    return this.#writing(() => {
      this.#exec(mode === 'immediate' ? 'BEGIN IMMEDIATE' : 'BEGIN');
      let result: T;
      try {
        result = fn();
      } catch (error) {
        if (this.inTransaction) this.#exec('ROLLBACK');
        throw error;
      }
      this.#exec('COMMIT');
      return result;
    });
  }

  /** Closes the connection and forgets the statements; idempotent. */
  close(): void {
    const db = this.#db;
    if (db === undefined) return;
    this.#db = undefined;
    if (this.#holdsReadLock && !db.inTransaction) {
      // The driver closes the connection for good only once its statements are collected, and
      // until then a held read lock would keep the next connection to this file from writing it
      // (SQLITE_BUSY): back to NORMAL locking, and one read, which releases the lock as it ends.
      try {
        db.exec('PRAGMA locking_mode = NORMAL; SELECT 1 FROM sqlite_schema LIMIT 1');
      } catch {
        // closing anyway
      }
    }
    for (const statements of Object.values(this.#statements)) statements.clear();
    this.#release.closed = true;
    descriptorTracker.closed(this.#release);
    db.close();
  }
}
