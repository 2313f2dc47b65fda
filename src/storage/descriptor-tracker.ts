import { setImmediate as nextTurn } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';

/** Per-connection bookkeeping: how many of its statements are still alive, and whether it was closed. */
export interface ReleaseRecord {
  live: number;
  closed: boolean;
  descriptors: number;
}

/**
 * Counts descriptors that closed connections still hold. The libSQL driver releases a file only
 * when every statement prepared on it has been garbage collected and the event loop has turned
 * (measured in FACTS.md), so `close()` alone does not give descriptors back. A bounded cache
 * must count these "closing" descriptors and, when they crowd its budget, force their release.
 */
/** Pending descriptors at which a collection is scheduled even when no cache asks for room. */
const autoReleaseAt = 64;
/** Most event-loop turns a release waits for finalizers after a collection. */
const maxTurns = 50;

class DescriptorTracker {
  #pending = 0;
  readonly #registry = new FinalizationRegistry<ReleaseRecord>((record) => {
    record.live -= 1;
    if (record.closed && record.live === 0) this.#pending -= record.descriptors;
  });
  #gc: (() => void) | undefined;
  #scheduled = false;
  #queued: Promise<void> | undefined;
  #running: Promise<void> | undefined;

  watchStatement(statement: object, record: ReleaseRecord): void {
    this.#registry.register(statement, record);
  }

  closed(record: ReleaseRecord): void {
    if (record.live === 0) return;
    this.#pending += record.descriptors;
    // Connections closed outside a budgeted cache (a file built for a new instance, say) would
    // otherwise wait for a GC that an idle or allocation-light process may not run for a long time.
    if (this.#pending >= autoReleaseAt && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (this.#pending >= autoReleaseAt) this.#collect();
      });
    }
  }

  /** Descriptors of closed connections whose statements were not collected yet. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Collects garbage and lets the driver's finalizers run, so closed connections really close.
   * A full collection costs a few milliseconds; callers batch evictions so this runs rarely.
   */
  release(): Promise<void> {
    if (this.#pending <= 0) return Promise.resolve();
    // Callers share a collection that has not started yet; one that already ran may predate
    // their closes, so they queue the next. A full GC per caller would cost more than the files.
    if (this.#queued !== undefined) return this.#queued;
    const queued = (this.#running ?? Promise.resolve()).then(async () => {
      this.#queued = undefined;
      const running = (async () => {
        const before = this.#pending;
        this.#collect();
        // Native finalizers and FinalizationRegistry callbacks run on later turns of the loop;
        // how many turns depends on what else is queued, so wait (boundedly) until they have.
        for (let turn = 0; turn < maxTurns && this.#pending > 0; turn++) {
          await nextTurn();
          if (turn >= 2 && this.#pending < before) break;
        }
      })();
      this.#running = running;
      try {
        await running;
      } finally {
        if (this.#running === running) this.#running = undefined;
      }
    });
    this.#queued = queued;
    return queued;
  }

  #collect(): void {
    if (this.#gc === undefined) {
      const exposed = (globalThis as { gc?: () => void }).gc;
      if (exposed !== undefined) this.#gc = exposed;
      else {
        v8.setFlagsFromString('--expose-gc');
        this.#gc = vm.runInNewContext('gc') as () => void;
      }
    }
    this.#gc();
  }
}

export const descriptorTracker = new DescriptorTracker();

/** Open descriptors of this process right now (Linux); undefined where /proc is unavailable. */
export async function countOpenDescriptors(): Promise<number | undefined> {
  const { readdir } = await import('node:fs/promises');
  try {
    return (await readdir('/proc/self/fd')).length;
  } catch {
    return undefined;
  }
}
