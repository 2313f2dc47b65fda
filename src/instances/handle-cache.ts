import fs from 'node:fs';
import { FleetqlError } from '../errors.js';
import { descriptorTracker, type SqliteDatabase } from '../storage/index.js';

/**
 * When the budget is reached, idle handles are closed down to this share of it at once: closed
 * handles are released together by one garbage collection, which costs milliseconds.
 */
const lowWatermark = 0.75;

export interface HandleCacheOptions {
  /** Budget in file descriptors: open handles plus closed ones the driver has not released yet. */
  maxDescriptors: number;
  /** Descriptors one open handle holds (1 for a rollback journal, 3 for WAL). */
  descriptorsPerHandle: number;
  /** Opens an existing instance file. */
  open(file: string): SqliteDatabase;
  /** Told each time a handle is closed (before it is). */
  onClose?: () => void;
}

export interface HandleCacheStats {
  open: number;
  descriptors: number;
  pendingDescriptors: number;
  hits: number;
  misses: number;
  evictions: number;
}

/** What `useCached` returns when the handle is not there to use synchronously. */
export const notCached: unique symbol = Symbol('notCached');

interface Entry {
  readonly key: string;
  readonly db: SqliteDatabase;
  /** The value of the cache's open counter when this handle was opened. */
  readonly opened: number;
  users: number;
  evicting: boolean;
  /** Used since eviction last passed it (see `#evictIdle`). */
  used: boolean;
}

/**
 * The one place instance files are opened. Handles stay open for reuse (a warm query is several
 * times cheaper than a cold one), bounded by descriptors, not by count, and evicted about least
 * recently used first (second chance: a use only sets a flag, so a warm fan-out moves nothing). A handle in use is never closed under its user; eviction closes idle handles in batches
 * down to a low watermark and, when closed-but-unreleased descriptors crowd the budget, forces
 * their release (see storage/descriptor-tracker.ts).
 */
export class HandleCache {
  readonly #options: HandleCacheOptions;
  readonly #entries = new Map<string, Entry>();
  #descriptors = 0;
  #waiters: Array<() => void> = [];
  #closed = false;
  /** Handles opened so far: a handle whose `opened` is at most a value read earlier was open all along since. */
  #opens = 0;
  readonly #stats = { hits: 0, misses: 0, evictions: 0 };

  constructor(options: HandleCacheOptions) {
    if (options.maxDescriptors < options.descriptorsPerHandle) throw new Error('maxDescriptors is smaller than one handle');
    this.#options = options;
  }

  /** Runs `fn` with the handle of `file` and gives the handle back whatever `fn` does. */
  async use<T>(file: string, fn: (db: SqliteDatabase) => T | Promise<T>): Promise<T> {
    const entry = await this.#acquire(file);
    try {
      return await fn(entry.db);
    } finally {
      entry.users -= 1;
      this.#wake();
    }
  }

  /** The open counter now: pass it to `useCached` later to ask for a handle that has been open since. */
  get opens(): number {
    return this.#opens;
  }

  /**
   * Runs `fn` synchronously on the handle of `file` if it is open, not being evicted, and was
   * opened no later than `openedBy` (a value of `opens` read earlier: the file was not closed and
   * reopened in between); returns `notCached` otherwise, and `use` is the way.
   */
  useCached<A, T>(file: string, openedBy: number, fn: (db: SqliteDatabase, arg: A) => T, arg: A): T | typeof notCached {
    const entry = this.#entries.get(file);
    if (entry === undefined || entry.evicting || entry.opened > openedBy || this.#closed) return notCached;
    entry.used = true;
    entry.users += 1;
    this.#stats.hits += 1;
    try {
      return fn(entry.db, arg);
    } finally {
      entry.users -= 1;
      if (this.#waiters.length > 0) this.#wake();
    }
  }

  /**
   * Runs `fn` synchronously on the handle of `file`, opened now if need be, when that needs no
   * wait: the handle cached and not being evicted, or room for one (idle handles evicted to make
   * it, as `use` would). Returns `notCached` when a wait is needed (every handle in use, closed
   * descriptors to release first, the handle being evicted), and `use` is the way.
   */
  useNow<A, T>(file: string, fn: (db: SqliteDatabase, arg: A) => T, arg: A): T | typeof notCached {
    if (this.#closed) return notCached;
    const entry = this.#acquireNow(file);
    if (typeof entry === 'string') return notCached;
    try {
      return fn(entry.db, arg);
    } finally {
      entry.users -= 1;
      if (this.#waiters.length > 0) this.#wake();
    }
  }

  async #acquire(file: string): Promise<Entry> {
    for (;;) {
      if (this.#closed) throw new FleetqlError('SERVICE_UNAVAILABLE', 'the server is shutting down');
      const entry = this.#acquireNow(file);
      if (typeof entry !== 'string') return entry;
      if (entry === 'release') {
        const pending = descriptorTracker.pending;
        await descriptorTracker.release();
        // Re-check after progress; without progress (nothing collectable) open rather than stall.
        if (descriptorTracker.pending < pending) continue;
        return this.#open(file);
      }
      // Being evicted, or every handle in use: wait for one to come back.
      await this.#waitForRelease();
    }
  }

  /** The handle of `file` taken for a user (opened if need be), or what must be waited for first. */
  #acquireNow(file: string): Entry | 'wait' | 'release' {
    const existing = this.#entries.get(file);
    if (existing !== undefined) {
      if (existing.evicting) return 'wait';
      existing.used = true;
      existing.users += 1;
      this.#stats.hits += 1;
      return existing;
    }
    const needed = this.#options.descriptorsPerHandle;
    const max = this.#options.maxDescriptors;
    if (this.#descriptors + descriptorTracker.pending + needed > max) {
      this.#evictIdle(Math.floor(max * lowWatermark));
    }
    if (this.#descriptors + needed > max) return 'wait';
    if (this.#descriptors + descriptorTracker.pending + needed > max) return 'release';
    return this.#open(file);
  }

  #open(file: string): Entry {
    // The driver creates missing files; an instance file must never come back by being read.
    if (!fs.existsSync(file)) throw new FleetqlError('INSTANCE_UNAVAILABLE', 'the instance file is missing');
    const db = this.#options.open(file);
    const entry: Entry = { key: file, db, opened: ++this.#opens, users: 1, evicting: false, used: false };
    this.#entries.set(file, entry);
    this.#descriptors += db.descriptors;
    this.#stats.misses += 1;
    return entry;
  }

  #closeEntry(entry: Entry): void {
    this.#options.onClose?.();
    this.#entries.delete(entry.key);
    this.#descriptors -= entry.db.descriptors;
    this.#stats.evictions += 1;
    entry.db.close();
  }

  /**
   * Closes idle handles in the order they were opened or last given a second chance, until at
   * most `target` descriptors are open. A handle used since eviction last passed it gets a second
   * chance: it moves to the end, unflagged. Two passes at most: after the first every idle handle
   * is unflagged.
   */
  #evictIdle(target: number): void {
    for (let pass = 0; pass < 2 && this.#descriptors > target; pass++) {
      for (const entry of [...this.#entries.values()]) {
        if (this.#descriptors <= target) break;
        if (entry.users > 0 || entry.evicting) continue;
        if (entry.used) {
          entry.used = false;
          this.#entries.delete(entry.key);
          this.#entries.set(entry.key, entry);
        } else this.#closeEntry(entry);
      }
    }
  }

  #waitForRelease(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Closes the handle of `file` once its users are done; later users wait and then reopen. */
  async evict(file: string): Promise<void> {
    const entry = this.#entries.get(file);
    if (entry === undefined || entry.evicting) return;
    entry.evicting = true;
    while (entry.users > 0) await this.#waitForRelease();
    this.#closeEntry(entry);
    this.#wake();
  }

  stats(): HandleCacheStats {
    return { open: this.#entries.size, descriptors: this.#descriptors, pendingDescriptors: descriptorTracker.pending, ...this.#stats };
  }

  /** Closes every handle after its users are done; further use fails with SERVICE_UNAVAILABLE. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#entries.keys()].map((file) => this.evict(file)));
    this.#wake();
    await descriptorTracker.release();
  }
}
