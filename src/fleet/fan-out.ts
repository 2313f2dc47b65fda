import { setImmediate as nextTurn } from 'node:timers/promises';
import { FleetqlError, isFleetqlError } from '../errors.js';

export interface FanOutOptions {
  /** Instance tasks in flight at once. */
  concurrency: number;
  /** An instance whose task takes longer is reported INSTANCE_TIMEOUT and its answer dropped. */
  instanceTimeoutMs: number;
  /** Instances not started by this time (ms since epoch, performance clock) are reported INSTANCE_TIMEOUT. */
  deadline: number;
}

export type InstanceOutcome<T> = { readonly instanceId: string; readonly ok: true; readonly value: T } | { readonly instanceId: string; readonly ok: false; readonly error: FleetqlError };

/** How long the fan-out may hold the event loop before it lets other requests run. */
const sliceMs = 4;

function asInstanceError(instanceId: string, error: unknown): FleetqlError {
  if (isFleetqlError(error)) {
    if (error.extensions['instance_id'] === instanceId) return error;
    return new FleetqlError(error.code, error.message, { cause: error, extensions: { ...error.extensions, instance_id: instanceId } });
  }
  return new FleetqlError('INSTANCE_UNAVAILABLE', `instance "${instanceId}" failed to answer`, { cause: error, extensions: { instance_id: instanceId } });
}

/**
 * Runs `task` on every target and returns one outcome per target, in target order; it never throws
 * for an instance's failure. The driver is synchronous, so the loop yields to the event loop every
 * few milliseconds: a fan-out over thousands of instances does not stall single-instance requests.
 * Per-instance time is measured around the task (a synchronous statement cannot be interrupted
 * from the same thread), and instances not started before the deadline are not started at all.
 */
export async function fanOut<T>(targets: readonly string[], options: FanOutOptions, task: (instanceId: string) => Promise<T>): Promise<InstanceOutcome<T>[]> {
  const outcomes: InstanceOutcome<T>[] = new Array(targets.length);
  let next = 0;
  let sliceStart = performance.now();
  const worker = async () => {
    while (next < targets.length) {
      const index = next++;
      const instanceId = targets[index]!;
      const started = performance.now();
      if (started > options.deadline) {
        outcomes[index] = { instanceId, ok: false, error: new FleetqlError('INSTANCE_TIMEOUT', `instance "${instanceId}" was not reached before the query's deadline`, { extensions: { instance_id: instanceId } }) };
        continue;
      }
      try {
        const value = await task(instanceId);
        const elapsed = performance.now() - started;
        outcomes[index] =
          elapsed > options.instanceTimeoutMs
            ? { instanceId, ok: false, error: new FleetqlError('INSTANCE_TIMEOUT', `instance "${instanceId}" took ${Math.round(elapsed)} ms, more than ${options.instanceTimeoutMs} ms`, { extensions: { instance_id: instanceId } }) }
            : { instanceId, ok: true, value };
      } catch (error) {
        outcomes[index] = { instanceId, ok: false, error: asInstanceError(instanceId, error) };
      }
      if (performance.now() - sliceStart > sliceMs) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, targets.length)) }, worker));
  return outcomes;
}
