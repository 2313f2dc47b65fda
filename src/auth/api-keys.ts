import { createHash, randomBytes } from 'node:crypto';
import type { ApiKeyEntry, Role } from '../config/index.js';

const prefix = 'fql_';

/** The hash fleetql keeps of a key. Keys carry 256 random bits, so one SHA-256 is enough (no stretching). */
export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** A new random key and the entry (hash only) to put into FLEETQL_API_KEYS. */
export function createApiKey(entry: { id: string; role: Role; instances?: readonly string[]; labels?: Record<string, string> }): { key: string; entry: ApiKeyEntry } {
  const key = `${prefix}${randomBytes(32).toString('base64url')}`;
  return {
    key,
    entry: {
      id: entry.id,
      hash: hashApiKey(key),
      role: entry.role,
      ...(entry.instances === undefined ? {} : { instances: entry.instances }),
      ...(entry.labels === undefined ? {} : { labels: entry.labels }),
    },
  };
}

/** Looks keys up by their hash: the key itself is never stored or compared. */
export class ApiKeyTable {
  readonly #byHash: Map<string, ApiKeyEntry>;

  constructor(entries: readonly ApiKeyEntry[]) {
    this.#byHash = new Map(entries.map((entry) => [entry.hash, entry]));
  }

  get size(): number {
    return this.#byHash.size;
  }

  find(key: string): ApiKeyEntry | undefined {
    return this.#byHash.get(hashApiKey(key));
  }
}
