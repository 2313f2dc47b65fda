import { FleetqlError, isFleetqlError } from '../errors.js';

export interface FanOutOptions {
  /** Instance tasks in flight at once (tasks that answer synchronously run one after another). */
  concurrency: number;
  /** An instance whose task takes longer is reported INSTANCE_TIMEOUT and its answer dropped. */
  instanceTimeoutMs: number;
  /** Instances not started by this time (ms since epoch, performance clock) are reported INSTANCE_TIMEOUT. */
  deadline: number;
}

export type InstanceOutcome<T> = { readonly instanceId: string; readonly ok: true; readonly value: T } | { readonly instanceId: string; readonly ok: false; readonly error: FleetqlError };

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

/**
 * Runs `task` on every target and returns one outcome per target, in target order; it never throws
 * for an instance's failure. A task answers at once (a warm handle: the driver is synchronous) or
 * with a promise; the first kind runs back to back, the second with at most `concurrency` in
 * flight. Either way the loop yields to the event loop every few milliseconds, so a fan-out over
 * thousands of instances does not stall single-instance requests. Per-instance time is measured
 * around the task (a synchronous statement cannot be interrupted from the same thread), and
 * instances not started before the deadline are not started at all. `onAnswer` is told each
 * answer that counts (not timed out), as soon as it is known: a merge can tighten what later
 * instances are asked for.
 */
export function fanOut<T>(
  targets: readonly string[],
  options: FanOutOptions,
  task: (instanceId: string, index: number) => T | Promise<T>,
  onAnswer?: (value: T, index: number) => void,
): Promise<InstanceOutcome<T>[]> {
  const outcomes: InstanceOutcome<T>[] = new Array(targets.length);
  const concurrency = Math.max(1, options.concurrency);
  let next = 0;
  let inFlight = 0;
  let done = 0;
  let sliceStart = performance.now();
  let turnPending = false;
  let resolveAll!: (outcomes: InstanceOutcome<T>[]) => void;
  const all = new Promise<InstanceOutcome<T>[]>((resolve) => (resolveAll = resolve));

  const answered = (index: number, started: number, value: T): void => {
    const instanceId = targets[index]!;
    const elapsed = performance.now() - started;
    if (elapsed > options.instanceTimeoutMs) {
      outcomes[index] = { instanceId, ok: false, error: new FleetqlError('INSTANCE_TIMEOUT', `instance "${instanceId}" took ${Math.round(elapsed)} ms, more than ${options.instanceTimeoutMs} ms`, { extensions: { instance_id: instanceId } }) };
    } else {
      outcomes[index] = { instanceId, ok: true, value };
      onAnswer?.(value, index);
    }
  };
  const failed = (index: number, error: unknown): void => {
    const instanceId = targets[index]!;
    outcomes[index] = { instanceId, ok: false, error: asInstanceError(instanceId, error) };
  };

  const start = (index: number): void => {
    const instanceId = targets[index]!;
    const started = performance.now();
    if (started > options.deadline) {
      outcomes[index] = { instanceId, ok: false, error: new FleetqlError('INSTANCE_TIMEOUT', `instance "${instanceId}" was not reached before the query's deadline`, { extensions: { instance_id: instanceId } }) };
      done += 1;
      return;
    }
    let result: T | Promise<T>;
    try {
      result = task(instanceId, index);
    } catch (error) {
      failed(index, error);
      done += 1;
      return;
    }
    if (!isPromise(result)) {
      answered(index, started, result);
      done += 1;
      return;
    }
    inFlight += 1;
    const settled = (): void => {
      inFlight -= 1;
      done += 1;
      // Carries on in the current slice, or leaves it to the next turn already asked for.
      if (!turnPending) pump();
    };
    result.then(
      (value) => {
        try {
          answered(index, started, value);
        } finally {
          settled();
        }
      },
      (error: unknown) => {
        failed(index, error);
        settled();
      },
    );
  };

  // Starts tasks until `concurrency` are in flight, every target is started or the slice is used up.
  const pump = (): void => {
    while (next < targets.length && inFlight < concurrency) {
      if (performance.now() - sliceStart > sliceMs) {
        nextTurn();
        return;
      }
      start(next++);
    }
    if (done === targets.length) resolveAll(outcomes);
  };
  const nextTurn = (): void => {
    turnPending = true;
    setImmediate(() => {
      turnPending = false;
      sliceStart = performance.now();
      pump();
    });
  };

  pump();
  return all;
}
