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
 * Moves one instance from its current version to `target`, each migration in its own transaction
 * together with its record, so a failure leaves the instance at the last version that committed.
 * Returns the version reached. `from` skips reading the current version (a file being built is at
 * 0): with it, no statement is prepared, so closing the connection releases its file at once.
 */
export function migrateTo(db: SqliteDatabase, set: MigrationSet, target: number, options: { from?: number; now?: () => string } = {}): number {
  if (target > set.head) throw new FleetqlError('MIGRATION_INVALID', `target version ${target} is past the head (${set.head})`);
  const now = options.now ?? (() => new Date().toISOString());
  db.exec(createTable);
  let version = options.from ?? currentVersion(db);
  while (version < target) {
    const migration = set.get(version + 1);
    if (migration === undefined) throw new FleetqlError('MIGRATION_MISSING', `migration ${version + 1} is missing`);
    try {
      db.transaction(() => {
        db.exec(migration.sql);
        db.exec(
          `INSERT INTO ${appliedMigrationsTable} (version, name, checksum, applied_at) VALUES (${migration.version}, ${literal(migration.name)}, ${literal(migration.checksum)}, ${literal(now())})`,
        );
      });
    } catch (error) {
      throw new FleetqlError('MIGRATION_FAILED', `migration ${migration.version} (${migration.name}) failed`, {
        cause: error,
        extensions: { version: migration.version },
      });
    }
    version = migration.version;
  }
  return version;
}
