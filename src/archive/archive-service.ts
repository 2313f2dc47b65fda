import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { ArchiveRecord, Catalog, InstanceRecord } from '../catalog/index.js';
import { FleetqlError, isFleetqlError } from '../errors.js';
import { parseInstanceId, type InstanceService } from '../instances/index.js';
import type { ArchiveStore } from './archive-store.js';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Time-ordered, unguessable archive ids: `a<ms base36>-<12 hex>`. */
function newArchiveId(): string {
  return `a${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

export type ArchiveOperation = 'archive' | 'retire' | 'destroy' | 'restore';

/** Told as each archive operation ends (metrics), with the error code of a failure; must be cheap and must not throw. */
export interface ArchiveObserver {
  archiveOperationDone(operation: ArchiveOperation, durationMs: number, code?: string): void;
}

/**
 * Archives and restores instances: a consistent snapshot, gzip-compressed, its SHA-256 recorded in
 * a manifest stored beside it, read back and verified before the catalog lists it. A restore
 * verifies the checksum and the database's integrity before the instance becomes ACTIVE.
 */
export class ArchiveService {
  readonly #objects: ArchiveStore;
  readonly #catalog: Catalog;
  readonly #instances: InstanceService;
  readonly #now: () => string;
  readonly #observer: ArchiveObserver | undefined;

  constructor(options: { store: ArchiveStore; catalog: Catalog; instances: InstanceService; now?: () => string; observer?: ArchiveObserver | undefined }) {
    this.#observer = options.observer;
    this.#objects = options.store;
    this.#catalog = options.catalog;
    this.#instances = options.instances;
    this.#now = options.now ?? (() => new Date().toISOString());
  }

  get storeDescription(): string {
    return this.#objects.description;
  }

  list(instanceId: string | undefined, limit: number, offset: number): ArchiveRecord[] {
    return this.#catalog.archives.list(instanceId === undefined ? undefined : parseInstanceId(instanceId), limit, offset);
  }

  get(archiveId: string): ArchiveRecord {
    const record = this.#catalog.archives.get(archiveId);
    if (record === undefined) throw new FleetqlError('ARCHIVE_NOT_FOUND', `archive "${archiveId.slice(0, 80)}" not found`);
    return record;
  }

  /**
   * Archives a live instance (writes may go on: the snapshot is of the last committed state). With
   * `retire`, the instance is taken out of service first and, once the archive is verified, marked
   * ARCHIVED and its file removed.
   */
  archive(rawId: unknown, options: { retire?: boolean } = {}): Promise<ArchiveRecord> {
    if (options.retire) {
      return this.#observed('retire', async () => {
        let archived: ArchiveRecord | undefined;
        await this.#instances.retire(rawId, 'ARCHIVED', async (record, image, version) => (archived = await this.#keep(record, image, version)).id);
        return archived!;
      });
    }
    return this.#observed('archive', async () => {
      const { record, image, version } = await this.#instances.snapshotImage(rawId);
      return this.#keep(record, image, version);
    });
  }

  /** destroy_instance(archive: true): archive, verify, then delete; the archive stays restorable. */
  destroy(rawId: unknown): Promise<InstanceRecord> {
    return this.#observed('destroy', () => this.#instances.retire(rawId, 'DESTROYED', async (record, image, version) => (await this.#keep(record, image, version)).id));
  }

  async #observed<T>(operation: ArchiveOperation, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await run();
      this.#observer?.archiveOperationDone(operation, performance.now() - started);
      return result;
    } catch (error) {
      this.#observer?.archiveOperationDone(operation, performance.now() - started, isFleetqlError(error) ? error.code : 'INTERNAL_SERVER_ERROR');
      throw error;
    }
  }

  /** Compresses, stores, reads back and verifies an image, then records it; returns the record. */
  async #keep(record: InstanceRecord, image: Buffer, version: number): Promise<ArchiveRecord> {
    const compressed = await gzip(image, { level: 6 });
    const id = newArchiveId();
    const archive: ArchiveRecord = {
      id,
      instance_id: record.id,
      key: `instances/${record.id}/${id}.db.gz`,
      created_at: this.#now(),
      schema_version: version,
      labels: record.labels,
      size_bytes: image.length,
      compressed_bytes: compressed.length,
      sha256: sha256(compressed),
      verified_at: '',
    };
    await this.#objects.put(archive.key, compressed);
    // Only what was read back and matched is an archive.
    const stored = await this.#objects.get(archive.key);
    if (sha256(stored) !== archive.sha256) {
      await this.#objects.delete(archive.key).catch(() => undefined);
      throw new FleetqlError('ARCHIVE_CORRUPT', `the archive of "${record.id}" did not read back intact from ${this.#objects.description}; nothing was recorded`);
    }
    const verified = { ...archive, verified_at: this.#now() };
    await this.#objects.put(`instances/${record.id}/${id}.json`, Buffer.from(JSON.stringify({ format: 'fleetql-archive/1', ...verified }, null, 2)));
    this.#catalog.archives.insert(verified);
    return verified;
  }

  /**
   * Brings an archive back as `asId` (default: its own id, which must be free, archived or
   * destroyed). ARCHIVE_CORRUPT, and nothing changes, when the bytes or the database are not sound.
   */
  restore(archiveId: string, asId?: string): Promise<InstanceRecord> {
    return this.#observed('restore', () => this.#restore(archiveId, asId));
  }

  async #restore(archiveId: string, asId?: string): Promise<InstanceRecord> {
    const archive = this.get(archiveId);
    const target = parseInstanceId(asId ?? archive.instance_id);
    let stored: Buffer;
    try {
      stored = await this.#objects.get(archive.key);
    } catch (error) {
      if (isFleetqlError(error, 'ARCHIVE_NOT_FOUND')) throw new FleetqlError('ARCHIVE_CORRUPT', `archive "${archive.id}" is missing from ${this.#objects.description}`, { cause: error });
      throw error;
    }
    if (stored.length !== archive.compressed_bytes || sha256(stored) !== archive.sha256) {
      throw new FleetqlError('ARCHIVE_CORRUPT', `archive "${archive.id}" does not match its checksum`, { extensions: { archive_id: archive.id } });
    }
    let image: Buffer;
    try {
      image = await gunzip(stored);
    } catch (error) {
      throw new FleetqlError('ARCHIVE_CORRUPT', `archive "${archive.id}" cannot be decompressed`, { cause: error });
    }
    if (image.length !== archive.size_bytes) throw new FleetqlError('ARCHIVE_CORRUPT', `archive "${archive.id}" has the wrong size`);
    return this.#instances.createFromImage(target, archive.labels, image, archive.schema_version);
  }
}
