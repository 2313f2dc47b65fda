import { FleetqlError } from '../errors.js';
import { SqliteDatabase } from '../storage/index.js';
import { migrateTo } from './apply.js';
import type { MigrationSet } from './migration-set.js';

/**
 * How a column's values travel through GraphQL, from its declared type: SQLite's affinity rules,
 * plus the common declared types BOOLEAN (stored 0/1), JSON (stored as text) and date/time
 * (stored as ISO-8601 text). A column with no declared type (or ANY) can hold anything: `any`.
 */
export type ColumnKind = 'integer' | 'real' | 'numeric' | 'text' | 'blob' | 'boolean' | 'json' | 'datetime' | 'any';

export interface ColumnInfo {
  readonly name: string;
  readonly declaredType: string;
  readonly kind: ColumnKind;
  readonly notNull: boolean;
  readonly hasDefault: boolean;
  /** Generated columns are read-only. */
  readonly generated: boolean;
  /** An INTEGER PRIMARY KEY aliases the rowid: SQLite assigns it when an insert leaves it out. */
  readonly autoIncrement: boolean;
}

export interface ForeignKeyInfo {
  readonly columns: readonly string[];
  readonly table: string;
  readonly references: readonly string[];
}

export interface UniqueConstraintInfo {
  /** `<table>_pkey` for the primary key, else the index name. */
  readonly name: string;
  readonly columns: readonly string[];
}

export interface TableInfo {
  readonly name: string;
  readonly columns: readonly ColumnInfo[];
  /** Columns of the declared primary key; for a table without one, `["rowid"]` (see `rowidKey`). */
  readonly primaryKey: readonly string[];
  /** True when the table has no declared primary key and rows are keyed by the hidden rowid. */
  readonly rowidKey: boolean;
  readonly foreignKeys: readonly ForeignKeyInfo[];
  readonly uniqueConstraints: readonly UniqueConstraintInfo[];
  column(name: string): ColumnInfo | undefined;
}

/** The tables of an instance at one schema version. */
export interface InstanceSchema {
  readonly version: number;
  readonly tables: ReadonlyMap<string, TableInfo>;
}

const internal = /^(_fleetql|sqlite_)/i;

export function isInternalName(name: string): boolean {
  return internal.test(name);
}

export function columnKind(declaredType: string): ColumnKind {
  const type = declaredType.toUpperCase();
  if (type === '' || type === 'ANY') return 'any';
  if (/BOOL/.test(type)) return 'boolean';
  if (/^JSONB?$/.test(type)) return 'json';
  if (type.includes('INT')) return 'integer';
  if (/CHAR|CLOB|TEXT/.test(type)) return 'text';
  if (type.includes('BLOB')) return 'blob';
  if (/REAL|FLOA|DOUB/.test(type)) return 'real';
  if (/DATE|TIME/.test(type)) return 'datetime';
  return 'numeric';
}

interface XInfoRow {
  cid: bigint;
  name: string;
  type: string;
  notnull: bigint;
  dflt_value: unknown;
  pk: bigint;
  hidden: bigint;
}

function introspectTable(db: SqliteDatabase, name: string, sql: string): TableInfo {
  const rows = db.all<XInfoRow>(`SELECT * FROM pragma_table_xinfo(?)`, [name]).filter((row) => Number(row.hidden) !== 1);
  const primaryKey = rows
    .filter((row) => Number(row.pk) > 0)
    .sort((a, b) => Number(a.pk) - Number(b.pk))
    .map((row) => row.name);
  const withoutRowid = /\bWITHOUT\s+ROWID\b/i.test(sql);
  const singleIntegerKey = primaryKey.length === 1 && !withoutRowid;
  const columns: ColumnInfo[] = rows.map((row) => {
    // An INTEGER PRIMARY KEY is the rowid: never null, assigned when an insert leaves it out.
    const rowidAlias = singleIntegerKey && Number(row.pk) === 1 && row.type.toUpperCase() === 'INTEGER';
    return {
      name: row.name,
      declaredType: row.type,
      kind: columnKind(row.type),
      notNull: Number(row.notnull) === 1 || (withoutRowid && Number(row.pk) > 0) || rowidAlias,
      hasDefault: row.dflt_value !== null,
      generated: Number(row.hidden) === 2 || Number(row.hidden) === 3,
      autoIncrement: rowidAlias,
    };
  });
  const foreignKeys = new Map<number, { columns: string[]; table: string; references: string[] }>();
  for (const fk of db.all<{ id: bigint; seq: bigint; table: string; from: string; to: string | null }>(`SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq`, [name])) {
    const id = Number(fk.id);
    const entry = foreignKeys.get(id) ?? { columns: [], table: fk.table, references: [] };
    entry.columns.push(fk.from);
    if (fk.to !== null) entry.references.push(fk.to);
    foreignKeys.set(id, entry);
  }
  const uniqueConstraints: UniqueConstraintInfo[] = [];
  const rowidKey = primaryKey.length === 0;
  if (!rowidKey) uniqueConstraints.push({ name: `${name}_pkey`, columns: primaryKey });
  for (const index of db.all<{ name: string; unique: bigint; origin: string; partial: bigint }>(`SELECT * FROM pragma_index_list(?)`, [name])) {
    if (Number(index.unique) !== 1 || Number(index.partial) === 1 || index.origin === 'pk') continue;
    const indexColumns = db.all<{ seqno: bigint; name: string | null }>(`SELECT * FROM pragma_index_info(?) ORDER BY seqno`, [index.name]).map((c) => c.name);
    if (indexColumns.some((c) => c === null)) continue; // an index on an expression cannot be a conflict target
    uniqueConstraints.push({ name: isInternalName(index.name) ? `${name}_${(indexColumns as string[]).join('_')}_key` : index.name, columns: indexColumns as string[] });
  }
  const byName = new Map(columns.map((c) => [c.name, c]));
  return Object.freeze({
    name,
    columns,
    primaryKey: rowidKey ? ['rowid'] : primaryKey,
    rowidKey,
    foreignKeys: [...foreignKeys.values()].map((fk) => {
      // A foreign key that names no columns references the target's primary key.
      return { ...fk, references: fk.references.length > 0 ? fk.references : [] };
    }),
    uniqueConstraints,
    column: (column: string) => byName.get(column),
  });
}

function introspect(db: SqliteDatabase, version: number): InstanceSchema {
  const tables = new Map<string, TableInfo>();
  for (const row of db.all<{ name: string; sql: string }>(`SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name`)) {
    if (isInternalName(row.name)) continue;
    if (/^CREATE\s+VIRTUAL\s+TABLE/i.test(row.sql)) continue;
    tables.set(row.name, introspectTable(db, row.name, row.sql));
  }
  // Resolve foreign keys that reference the target's primary key implicitly.
  for (const [tableName, table] of tables) {
    const resolved = table.foreignKeys.map((fk) => {
      if (fk.references.length > 0) return fk;
      const target = tables.get(fk.table);
      return { ...fk, references: target && !target.rowidKey ? target.primaryKey : [] };
    });
    tables.set(tableName, Object.freeze({ ...table, foreignKeys: resolved }));
  }
  return Object.freeze({ version, tables });
}

/**
 * The instance schema at every version of the set, index = version (0 = empty), made by applying
 * the migrations to an in-memory database. Done once per migration set, at startup.
 */
export function introspectVersions(set: MigrationSet): InstanceSchema[] {
  const db = SqliteDatabase.open(':memory:', { journalMode: 'memory', busyTimeoutMs: 0, safeIntegers: true });
  try {
    const schemas: InstanceSchema[] = [introspect(db, 0)];
    for (const migration of set.migrations) {
      try {
        migrateTo(db, set, migration.version);
      } catch (error) {
        throw new FleetqlError('MIGRATION_INVALID', `migration ${migration.version} (${migration.name}) fails on an empty database: ${error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error)}`, { cause: error });
      }
      schemas.push(introspect(db, migration.version));
    }
    return schemas;
  } finally {
    db.close();
  }
}
