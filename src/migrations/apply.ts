import { FleetqlError } from '../errors.js';
import type { SqliteDatabase } from '../storage/index.js';
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

/**
 * Moves one instance from its current version to `target` and returns the version reached.
 * Each migration runs in a transaction together with its record, so an instance is never
 * half-migrated; with `atomic`, the whole move is one transaction, so a failure leaves the instance
 * at the version it started from (what a rollout wants). `from` skips reading the current version
 * (a file being built is at 0): with it, no statement is prepared, so closing the connection
 * releases its file at once.
 */
export function migrateTo(db: SqliteDatabase, set: MigrationSet, target: number, options: { from?: number; now?: () => string; atomic?: boolean } = {}): number {
  if (target > set.head) throw new FleetqlError('MIGRATION_INVALID', `target version ${target} is past the head (${set.head})`);
  const now = options.now ?? (() => new Date().toISOString());
  db.exec(createTable);
  const start = options.from ?? currentVersion(db);
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
    try {
      db.transaction(() => {
        while (version < target) step();
      });
    } catch (error) {
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
