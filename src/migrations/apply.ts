import { FleetqlError } from '../errors.js';
import { StorageError, type SqliteDatabase } from '../storage/index.js';
import type { MigrationSet } from './migration-set.js';

/** Inside every instance: which migrations were applied, with the checksum of the file that was run. */
export const appliedMigrationsTable = '_fleetql_migrations';

export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  applied_at: string;
}

const createTable = `CREATE TABLE IF NOT EXISTS ${appliedMigrationsTable} (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at TEXT NOT NULL
) STRICT`;

function hasTable(db: SqliteDatabase): boolean {
  return db.get(`SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = ?`, [appliedMigrationsTable]) !== undefined;
}

/** The instance's schema version: the highest applied migration, 0 for a new file. */
export function currentVersion(db: SqliteDatabase): number {
  if (!hasTable(db)) return 0;
  const row = db.get<{ version: number | bigint | null }>(`SELECT max(version) AS version FROM ${appliedMigrationsTable}`);
  return Number(row?.version ?? 0);
}

export function appliedMigrations(db: SqliteDatabase): AppliedMigration[] {
  if (!hasTable(db)) return [];
  return db
    .all<AppliedMigration>(`SELECT version, name, checksum, applied_at FROM ${appliedMigrationsTable} ORDER BY version`)
    .map((row) => ({ ...row, version: Number(row.version) }));
}

/** SQL text literal for values fleetql made itself (names, hex checksums, ISO times); never for input. */
function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Thrown by `migrateTo` when the `from` it was told to check is not the instance's version. */
export class VersionMismatch extends Error {
  constructor(expected: number) {
    super(`the instance is not at version ${expected}`);
    this.name = 'VersionMismatch';
  }
}

/**
 * Fails with VersionMismatch unless the instance is at `version`, without preparing a statement
 * (a statement kept alive keeps its connection's file open until it is collected: FACTS.md): exec
 * runs a SELECT whose CASE overflows an integer on a mismatch.
 */
function checkVersion(db: SqliteDatabase, version: number): void {
  try {
    db.exec(`SELECT CASE WHEN (SELECT max(version) FROM ${appliedMigrationsTable}) IS ${Math.trunc(version)} THEN 0 ELSE abs(-9223372036854775807 - 1) END`);
  } catch (error) {
    if (error instanceof StorageError && /integer overflow/i.test(error.message)) throw new VersionMismatch(version);
    throw error;
  }
}

export interface MigrateOptions {
  /**
   * The version the instance is at, so it is not read (a file being built is at 0): with it, no
   * statement is prepared, and closing the connection releases its file at once.
   */
  from?: number;
  /** With `from` and `atomic`: checked inside the transaction (VersionMismatch, nothing changed). */
  checkFrom?: boolean;
  /** With `atomic`: runs inside the transaction, once the version is known and before any change. */
  beforeChanges?: () => void;
  now?: () => string;
  atomic?: boolean;
}

/**
 * Moves one instance from its current version to `target` and returns the version reached.
 * Each migration runs in a transaction together with its record, so an instance is never
 * half-migrated; with `atomic`, the whole move is one transaction, so a failure leaves the instance
 * at the version it started from (what a rollout wants).
 */
export function migrateTo(db: SqliteDatabase, set: MigrationSet, target: number, options: MigrateOptions = {}): number {
  if (target > set.head) throw new FleetqlError('MIGRATION_INVALID', `target version ${target} is past the head (${set.head})`);
  const now = options.now ?? (() => new Date().toISOString());
  const start = options.from ?? currentVersion(db);
  // A version above 0 was read from the table itself.
  if (start === 0) db.exec(createTable);
  let version = start;
  const step = () => {
    const migration = set.get(version + 1);
    if (migration === undefined) throw new FleetqlError('MIGRATION_MISSING', `migration ${version + 1} is missing`);
    db.exec(migration.sql);
    db.exec(
      `INSERT INTO ${appliedMigrationsTable} (version, name, checksum, applied_at) VALUES (${migration.version}, ${literal(migration.name)}, ${literal(migration.checksum)}, ${literal(now())})`,
    );
    version = migration.version;
  };
  const failed = (error: unknown) => {
    if (error instanceof FleetqlError && error.code === 'MIGRATION_MISSING') return error;
    return new FleetqlError('MIGRATION_FAILED', `migration ${version + 1} (${set.get(version + 1)?.name ?? '?'}) failed`, {
      cause: error,
      extensions: { version: version + 1 },
    });
  };
  if (options.atomic) {
    let changing = false;
    try {
      db.transaction(() => {
        if (options.checkFrom === true && options.from !== undefined) checkVersion(db, start);
        options.beforeChanges?.();
        changing = true;
        while (version < target) step();
      });
    } catch (error) {
      // A mismatch, or a failure of `beforeChanges`, is not the migration's.
      if (!changing) throw error;
      const wrapped = failed(error);
      version = start;
      throw wrapped;
    }
    return version;
  }
  while (version < target) {
    try {
      db.transaction(step);
    } catch (error) {
      throw failed(error);
    }
  }
  return version;
}
