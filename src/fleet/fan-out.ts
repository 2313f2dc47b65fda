import { FleetqlError, isFleetqlError } from '../errors.js';

export interface FanOutOptions {
  /** Instance tasks in flight at once (tasks that answer synchronously run one after another). */
  concurrency: number;
  /** An instance whose task takes longer is reported INSTANCE_TIMEOUT and its answer dropped. */
  instanceTimeoutMs: number;
  /** Instances not started by this time (ms since epoch, performance clock) are reported INSTANCE_TIMEOUT. */
  deadline: number;
}

/**
 * How long the fan-out may hold the event loop before it lets other requests run: single-instance
 * reads wait at most about this long behind a fan-out (bench item 4), and each slice costs the
 * fan-out one turn of the event loop.
 */
const sliceMs = 4;

function asInstanceError(instanceId: string, error: unknown): FleetqlError {
  if (isFleetqlError(error)) {
    if (error.extensions['instance_id'] === instanceId) return error;
    return new FleetqlError(error.code, error.message, { cause: error, extensions: { ...error.extensions, instance_id: instanceId } });
  }
  return new FleetqlError('INSTANCE_UNAVAILABLE', `instance "${instanceId}" failed to answer`, { cause: error, extensions: { instance_id: instanceId } });
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** What a fan-out leaves once every answer went to `onAnswer`: how many answered, and every failure. */
export interface FanOutResult {
  readonly answered: number;
  /** One per failed instance, in target order. */
  readonly failures: FleetqlError[];
}

/**
 * Runs `task` on every target; each answer that counts (not timed out) goes to `onAnswer` as soon
 * as it is known, and each failure comes back in the result: it never throws for an instance's
 * failure, and it keeps nothing per answered instance (a merge folds answers as they come, and can
 * tighten what later instances are asked for). A task answers at once (a warm handle: the driver is
 * synchronous) or with a promise; `concurrency` workers take targets in turn, and a worker whose
 * task answered at once goes on without a promise in between. The workers yield to the event loop
 * together every few milliseconds (one slice per turn of the loop, whoever uses it), so a fan-out
 * over thousands of instances does not stall single-instance requests. Per-instance time is
 * measured around the task (a synchronous statement cannot be interrupted from the same thread),
 * and instances not started before the deadline are not started at all.
 */
export async function fanOut<T>(
  targets: readonly string[],
  options: FanOutOptions,
  task: (instanceId: string, index: number) => T | Promise<T>,
  onAnswer: (value: T, index: number) => void,
): Promise<FanOutResult> {
  const failures: Array<{ index: number; error: FleetqlError }> = [];
  let answered = 0;
  let next = 0;
  let sliceStart = performance.now();
  // One shared wait per turn: the slice restarts once, and every worker waits for the same turn.
  let turn: Promise<void> | undefined;
  const nextTurn = (): Promise<void> =>
    (turn ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        turn = undefined;
        sliceStart = performance.now();
        resolve();
      }),
    ));
  // A worker whose last task went the async way (a cold open) yields on its own, as every worker
  // did before the synchronous path: measured on 10,000 cold instances, sharing the turn there
  // made the fan-out 1.5-2 times slower (cause not found); warm fan-outs share it, for latency.
  const ownTurn = (): Promise<void> =>
    new Promise<void>((resolve) =>
      setImmediate(() => {
        sliceStart = performance.now();
        resolve();
      }),
    );
  const worker = async () => {
    let wentAsync = false;
    // One clock reading per instance: the end of one task is the start of the next.
    let now = performance.now();
    while (next < targets.length) {
      if (now - sliceStart > sliceMs) {
        await (wentAsync ? ownTurn() : nextTurn());
        wentAsync = false;
        now = performance.now();
        continue;
      }
      const index = next++;
      const instanceId = targets[index]!;
      const started = now;
      if (started > options.deadline) {
        failures.push({ index, error: new FleetqlError('INSTANCE_TIMEOUT', `instance "${instanceId}" was not reached before the query's deadline`, { extensions: { instance_id: instanceId } }) });
        continue;
      }
      try {
        wentAsync = false;
        const result = task(instanceId, index);
        wentAsync = isPromise(result);
        const value = wentAsync ? await result : (result as T);
        now = performance.now();
        const elapsed = now - started;
        if (elapsed > options.instanceTimeoutMs) {
          failures.push({ index, error: new FleetqlError('INSTANCE_TIMEOUT', `instance "${instanceId}" took ${Math.round(elapsed)} ms, more than ${options.instanceTimeoutMs} ms`, { extensions: { instance_id: instanceId } }) });
        } else {
          onAnswer(value, index);
          answered += 1;
        }
      } catch (error) {
        now = performance.now();
        failures.push({ index, error: asInstanceError(instanceId, error) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, targets.length)) }, worker));
  return { answered, failures: failures.sort((a, b) => a.index - b.index).map(({ error }) => error) };
}
