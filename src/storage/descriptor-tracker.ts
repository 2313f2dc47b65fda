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
class DescriptorTracker {
  #pending = 0;
  readonly #registry = new FinalizationRegistry<ReleaseRecord>((record) => {
    record.live -= 1;
    if (record.closed && record.live === 0) this.#pending -= record.descriptors;
  });
  #gc: (() => void) | undefined;

  watchStatement(statement: object, record: ReleaseRecord): void {
    this.#registry.register(statement, record);
  }

  closed(record: ReleaseRecord): void {
    if (record.live > 0) this.#pending += record.descriptors;
  }

  /** Descriptors of closed connections whose statements were not collected yet. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Collects garbage and lets the driver's finalizers run, so closed connections really close.
   * A full collection costs a few milliseconds; callers batch evictions so this runs rarely.
   */
  async release(): Promise<void> {
    if (this.#pending <= 0) return;
    this.#collect();
    // Native finalizers and FinalizationRegistry callbacks run on later turns of the loop.
    await nextTurn();
    await nextTurn();
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
