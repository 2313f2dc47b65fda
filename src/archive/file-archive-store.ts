import fs from 'node:fs/promises';
import path from 'node:path';
import { FleetqlError } from '../errors.js';
import { writeFileDurably } from '../storage/index.js';
import type { ArchiveStore } from './archive-store.js';

/** Archives as files under a local directory (the embedded default, `./data/archives`). */
export class FileArchiveStore implements ArchiveStore {
  readonly #root: string;
  readonly description: string;

  constructor(root: string) {
    this.#root = path.resolve(root);
    this.description = `directory ${this.#root}`;
  }

  #path(key: string): string {
    const resolved = path.resolve(this.#root, key);
    if (!resolved.startsWith(`${this.#root}${path.sep}`)) throw new Error(`archive key escapes the store: ${key}`);
    return resolved;
  }

  async put(key: string, body: Buffer): Promise<void> {
    try {
      writeFileDurably(this.#path(key), body);
    } catch (error) {
      throw new FleetqlError('ARCHIVE_STORE_UNAVAILABLE', `the archive store (${this.description}) cannot be written`, { cause: error });
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.#path(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new FleetqlError('ARCHIVE_NOT_FOUND', `archive object ${key} is missing from the store`);
      throw new FleetqlError('ARCHIVE_STORE_UNAVAILABLE', `the archive store (${this.description}) cannot be read`, { cause: error });
    }
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.#path(key), { force: true });
  }
}
