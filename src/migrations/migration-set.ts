import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FleetqlError } from '../errors.js';

/** One ordered SQL file of `migrations/`, e.g. `0001_create_machines.sql`. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** SHA-256 of the file's bytes, hex: an applied migration must never change. */
  readonly checksum: string;
  readonly sql: string;
}

/** The loaded migrations, contiguous from version 1; the head is the last one. */
export interface MigrationSet {
  readonly migrations: readonly Migration[];
  readonly head: number;
  /** SHA-256 over every migration's checksum: one value that names the whole set. */
  readonly fingerprint: string;
  get(version: number): Migration | undefined;
}

const fileName = /^(\d{4,})_([a-z0-9][a-z0-9_]*)\.sql$/;
// A migration runs inside the transaction fleetql opens for it; its own would break that promise.
const transactionControl = /^\s*(BEGIN\s*(;|TRANSACTION|IMMEDIATE|EXCLUSIVE|DEFERRED)|COMMIT\b|ROLLBACK\b|SAVEPOINT\b|RELEASE\b|END\s+TRANSACTION\b)/im;

export function checksumOf(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export function makeMigrationSet(migrations: readonly Migration[]): MigrationSet {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new FleetqlError('MIGRATION_INVALID', `migration versions must run 1, 2, 3… without gaps or repeats; expected ${index + 1}, found ${migration.version} (${migration.name})`);
    }
  });
  const byVersion = new Map(sorted.map((m) => [m.version, m]));
  return Object.freeze({
    migrations: Object.freeze(sorted),
    head: sorted.length,
    fingerprint: checksumOf(sorted.map((m) => m.checksum).join('\n')),
    get: (version: number) => byVersion.get(version),
  });
}

/** Reads every `NNNN_name.sql` file of `dir`; any other `.sql` file there is an error, other files are ignored. */
export function loadMigrations(dir: string): MigrationSet {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (error) {
    throw new FleetqlError('MIGRATION_INVALID', `cannot read the migrations directory ${dir}`, { cause: error });
  }
  const migrations: Migration[] = [];
  for (const entry of entries.sort()) {
    if (!entry.endsWith('.sql')) continue;
    const match = fileName.exec(entry);
    if (match === null) {
      throw new FleetqlError('MIGRATION_INVALID', `migration file "${entry}" must be named NNNN_name.sql (lower case, digits, underscores)`);
    }
    const bytes = fs.readFileSync(path.join(dir, entry));
    const sql = bytes.toString('utf8');
    if (transactionControl.test(sql)) {
      throw new FleetqlError('MIGRATION_INVALID', `migration "${entry}" must not control transactions itself: fleetql runs each migration in its own transaction`);
    }
    if (sql.trim().length === 0) throw new FleetqlError('MIGRATION_INVALID', `migration "${entry}" is empty`);
    migrations.push({ version: Number(match[1]), name: match[2]!, checksum: checksumOf(bytes), sql });
  }
  if (migrations.length === 0) throw new FleetqlError('MIGRATION_INVALID', `no migrations (NNNN_name.sql) found in ${dir}`);
  return makeMigrationSet(migrations);
}
