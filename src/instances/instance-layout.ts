import { createHash } from 'node:crypto';
import path from 'node:path';
import type { InstanceId } from './instance-id.js';

/**
 * Where instance files live: `instances/ab/cd/<id>.db`, with `ab/cd` from the SHA-256 of the id,
 * so no directory grows past a few entries per 65,536 instances.
 */
export class InstanceLayout {
  readonly root: string;
  readonly snapshotsRoot: string;
  /** Files of recently asked ids: a fan-out asks for the same thousands of paths query after query. */
  #files = new Map<string, string>();
  constructor(root: string, snapshotsRoot: string) {
    this.root = path.resolve(root);
    this.snapshotsRoot = path.resolve(snapshotsRoot);
  }

  #spread(root: string, id: InstanceId): string {
    const hash = createHash('sha256').update(id).digest('hex');
    return path.join(root, hash.slice(0, 2), hash.slice(2, 4), `${id}.db`);
  }

  fileOf(id: InstanceId): string {
    let file = this.#files.get(id);
    if (file === undefined) {
      // Bounded: dropped whole when it grows past a large fleet (recomputing is a hash, not I/O).
      if (this.#files.size >= 100_000) this.#files.clear();
      file = this.#spread(this.root, id);
      this.#files.set(id, file);
    }
    return file;
  }

  /**
   * The pre-migration copy a rollout keeps of an instance, for a rollback. One flat directory per rollout (an ext4 directory indexes its entries): the rollout creates its
   * snapshot files ahead, a batch at a time, and syncs the directory once per batch rather than once
   * per instance (see createFilesDurably).
   */
  snapshotOf(rolloutId: number, id: InstanceId): string {
    return path.join(this.snapshotsOfRollout(rolloutId), this.snapshotNameOf(id));
  }

  snapshotNameOf(id: InstanceId): string {
    return `${id}.db`;
  }

  /** Where fleetql before 2026-12 kept the snapshot (spread like instance files): still restorable. */
  legacySnapshotOf(rolloutId: number, id: InstanceId): string {
    return this.#spread(this.snapshotsOfRollout(rolloutId), id);
  }

  snapshotsOfRollout(rolloutId: number): string {
    return path.join(this.snapshotsRoot, `rollout-${rolloutId}`);
  }

  /** Where a file is built before it is renamed into place. */
  buildingFileOf(id: InstanceId, operationId: number): string {
    return `${this.fileOf(id)}.creating-${operationId}`;
  }

  /** Where a file is moved before it is deleted, so a half-deleted file is never at the live path. */
  retiringFileOf(id: InstanceId, operationId: number): string {
    return `${this.fileOf(id)}.destroying-${operationId}`;
  }
}
