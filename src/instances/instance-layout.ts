import { createHash } from 'node:crypto';
import path from 'node:path';
import type { InstanceId } from './instance-id.js';

/**
 * Where instance files live: `instances/ab/cd/<id>.db`, with `ab/cd` from the SHA-256 of the id,
 * so no directory grows past a few entries per 65,536 instances.
 */
export class InstanceLayout {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  fileOf(id: InstanceId): string {
    const hash = createHash('sha256').update(id).digest('hex');
    return path.join(this.root, hash.slice(0, 2), hash.slice(2, 4), `${id}.db`);
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
