import type { SqliteDatabase } from '../storage/index.js';
import type { Labels } from './catalog.js';

/** What the catalog keeps of one verified archive (the store keeps the same as a manifest beside it). */
export interface ArchiveRecord {
  readonly id: string;
  readonly instance_id: string;
  /** Key of the compressed database in the archive store. */
  readonly key: string;
  readonly created_at: string;
  readonly schema_version: number;
  readonly labels: Labels;
  /** Bytes of the database snapshot. */
  readonly size_bytes: number;
  /** Bytes stored (gzip). */
  readonly compressed_bytes: number;
  /** SHA-256 (hex) of the stored bytes. */
  readonly sha256: string;
  /** When the stored object was read back and matched `sha256`. */
  readonly verified_at: string;
}

export const archiveSchema = `
  CREATE TABLE archives (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    labels TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    compressed_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    verified_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX archives_by_instance ON archives (instance_id, created_at);`;

interface Row extends Omit<ArchiveRecord, 'labels' | 'schema_version' | 'size_bytes' | 'compressed_bytes'> {
  labels: string;
  schema_version: number | bigint;
  size_bytes: number | bigint;
  compressed_bytes: number | bigint;
}

const columns = 'id, instance_id, key, created_at, schema_version, labels, size_bytes, compressed_bytes, sha256, verified_at';

function toRecord(row: Row): ArchiveRecord {
  return Object.freeze({
    ...row,
    labels: JSON.parse(row.labels) as Labels,
    schema_version: Number(row.schema_version),
    size_bytes: Number(row.size_bytes),
    compressed_bytes: Number(row.compressed_bytes),
  });
}

/** The catalog's list of verified archives. */
export class ArchiveRecords {
  readonly #db: SqliteDatabase;

  constructor(db: SqliteDatabase) {
    this.#db = db;
  }

  insert(record: ArchiveRecord): void {
    this.#db.run(`INSERT INTO archives (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      record.id,
      record.instance_id,
      record.key,
      record.created_at,
      record.schema_version,
      JSON.stringify(record.labels),
      record.size_bytes,
      record.compressed_bytes,
      record.sha256,
      record.verified_at,
    ]);
  }

  get(id: string): ArchiveRecord | undefined {
    const row = this.#db.get<Row>(`SELECT ${columns} FROM archives WHERE id = ?`, [id]);
    return row === undefined ? undefined : toRecord(row);
  }

  list(instanceId: string | undefined, limit: number, offset: number): ArchiveRecord[] {
    return this.#db
      .all<Row>(`SELECT ${columns} FROM archives WHERE ? IS NULL OR instance_id = ? ORDER BY created_at DESC, id LIMIT ? OFFSET ?`, [instanceId ?? null, instanceId ?? null, limit, offset])
      .map(toRecord);
  }
}
