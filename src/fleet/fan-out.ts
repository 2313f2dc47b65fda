import { FleetqlError, isFleetqlError } from '../errors.js';

export interface FanOutOptions {
  /** Workers taking targets in turn, so as many slow answers in flight at once (prepared ones run one after another). */
  concurrency: number;
  /** An instance whose answer takes longer is reported INSTANCE_TIMEOUT and its answer dropped. */
  instanceTimeoutMs: number;
  /** Instances not started by this time (ms since epoch, performance clock) are reported INSTANCE_TIMEOUT. */
  deadline: number;
}

/**
 * How long the fan-out may hold the event loop before it lets other requests run: single-instance
 * reads wait at most about this long behind a fan-out (bench item 4), and each slice costs the
 * fan-out one turn of the event loop. A turn after milliseconds of reading costs far more than an
 * idle one (0.1-0.25 ms measured on these machines: the first system call after a long stretch of
 * user code is slow); 4 ms slices cost a warm fan-out over 1,000 instances 3-4 % of its time
 * against 8 ms slices (bench/RESULTS.md, sixth session).
 */
const sliceMs = 8;

function asInstanceError(instanceId: string, error: unknown): FleetqlError {
  if (isFleetqlError(error)) {
    if (error.extensions['instance_id'] === instanceId) return error;
    return new FleetqlError(error.code, error.message, { cause: error, extensions: { ...error.extensions, instance_id: instanceId } });
  }
  return new FleetqlError('INSTANCE_UNAVAILABLE', `instance "${instanceId}" failed to answer`, { cause: error, extensions: { instance_id: instanceId } });
}

/** What a fan-out leaves once every answer went to `onAnswer`: how many answered, and every failure. */
export interface FanOutResult {
  readonly answered: number;
  /** One per failed instance, in target order. */
  readonly failures: FleetqlError[];
}

/** What a fan-out asks of each target, by its index. */
export interface FanOutTask<T> {
  /**
   * The target's answer ready to run at once (its warm handle's statements found), to be run in
   * this turn of the event loop; or undefined when it cannot answer synchronously and `slow` must.
   */
  prepare(index: number): (() => T) | undefined;
  /**
   * The target's answer when `prepare` gave none: a handle to open (at once when nothing must be
   * waited for), a migration to wait for (a promise).
   */
  slow(index: number): T | Promise<T>;
  /** What a failure of a prepared answer is reported as (a damaged file, a statement too large). */
  failure(index: number, error: unknown): unknown;
}

/**
 * Most targets a worker prepares before it runs any of them: their handles and statements are
 * found first, then the answers run back to back, with one clock reading for the batch (see
 * bench/RESULTS.md for what that saved). A fan-out starts with batches of one and doubles them
 * while a batch takes well under a slice, so slow answers still let the event loop turn between
 * them.
 */
const maxBatch = 32;

/**
 * Runs every target's answer; each answer that counts (not timed out) goes to `onAnswer` as soon
 * as it is known, and each failure comes back in the result: it never throws for an instance's
 * failure, and it keeps nothing per answered instance (a merge folds answers as they come, and can
 * tighten what later instances are asked for). `concurrency` workers take targets in turn: a
 * worker prepares the warm ones in a batch (see maxBatch; it ends at the first target that must
 * go the slow way), runs their answers, then that slow one. The workers yield to
 * the event loop together every few milliseconds (one slice per turn of the loop, whoever uses
 * it), so a fan-out over thousands of instances does not stall single-instance requests.
 *
 * Time: a synchronous statement cannot be interrupted from the same thread, so an instance's time
 * is measured, and an answer that took longer than the instance timeout is dropped and reported.
 * A batch is timed as a whole: within the timeout, so was each of its instances. Over it, each of
 * its instances is asked again alone and timed (a slow one is read twice), and so is every later
 * instance of the fan-out. Instances not started before the deadline are not started at all (a
 * batch starts together).
 */
export async function fanOut<T>(targets: readonly string[], options: FanOutOptions, task: FanOutTask<T>, onAnswer: (value: T, index: number) => void): Promise<FanOutResult> {
  const failures: Array<{ index: number; error: FleetqlError }> = [];
  let answered = 0;
  let next = 0;
  // The first slice waits for the next turn too: called from a request's I/O callback (the poll
  // phase), a slice run at once and the next one (an immediate queued in the poll phase runs in
  // the same turn's check phase) would hold the event loop back to back, about two slices with no
  // I/O in between (seen as 19-20 ms stalls, one per fan-out over 10,000 instances). From there the
  // wait is short: the check phase comes in the same turn.
  let sliceStart = -Infinity;
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
  // A worker whose last answer had to wait (a migration, a handle cache full of handles in use)
  // yields on its own, as every worker did before the synchronous path: measured on 10,000 cold
  // instances when every open went the async way, sharing the turn there made the fan-out 1.5-2
  // times slower (cause not found); answers given at once share it, for latency.
  const ownTurn = (): Promise<void> =>
    new Promise<void>((resolve) =>
      setImmediate(() => {
        sliceStart = performance.now();
        resolve();
      }),
    );
  const fail = (index: number, error: unknown) => failures.push({ index, error: asInstanceError(targets[index]!, error) });
  const timedOut = (index: number, message: string) => {
    const instanceId = targets[index]!;
    failures.push({ index, error: new FleetqlError('INSTANCE_TIMEOUT', `instance "${instanceId}" ${message}`, { extensions: { instance_id: instanceId } }) });
  };
  const notReached = (index: number) => timedOut(index, 'was not reached before the query\'s deadline');
  /** An answer that took `elapsed` ms counts unless that is over the instance timeout. */
  const settle = (index: number, value: T, elapsed: number) => {
    if (elapsed > options.instanceTimeoutMs) timedOut(index, `took ${Math.round(elapsed)} ms, more than ${options.instanceTimeoutMs} ms`);
    else {
      onAnswer(value, index);
      answered += 1;
    }
  };
  // Set once a batch took longer than the instance timeout: from then on each answer is timed alone.
  let timeEach = false;
  let batchSize = 1;
  /** Runs a prepared answer alone, timed from `started` (unless the deadline passed); gives the time it ended. */
  const answerTimed = (index: number, answer: () => T, started: number): number => {
    if (started > options.deadline) {
      notReached(index);
      return started;
    }
    let now = started;
    try {
      const value = answer();
      now = performance.now();
      settle(index, value, now - started);
    } catch (error) {
      now = performance.now();
      fail(index, task.failure(index, error));
    }
    return now;
  };
  const worker = async () => {
    let wentAsync = false;
    // Per target of the batch: its prepared answer (undefined once it failed), then the answer.
    const prepared: Array<(() => T) | undefined> = [];
    const values: T[] = [];
    let now = performance.now();
    while (next < targets.length) {
      if (now - sliceStart > sliceMs) {
        await (wentAsync ? ownTurn() : nextTurn());
        wentAsync = false;
        now = performance.now();
        continue;
      }
      // Prepare: no other worker runs until this one awaits, so the batch is this worker's.
      const from = next;
      let slow = -1;
      while (next < targets.length && next - from < (timeEach ? 1 : batchSize)) {
        const index = next++;
        try {
          const ready = task.prepare(index);
          if (ready === undefined) {
            slow = index;
            break;
          }
          prepared.push(ready);
        } catch (error) {
          prepared.push(undefined);
          fail(index, error);
        }
      }
      if (prepared.length > 0) {
        wentAsync = false;
        if (now > options.deadline) {
          prepared.forEach((answer, i) => answer && notReached(from + i));
        } else if (timeEach) {
          prepared.forEach((answer, i) => answer && (now = answerTimed(from + i, answer, now)));
        } else {
          // The answers back to back, with one clock reading for the batch: a reading per
          // instance cost a warm fan-out several percent.
          const started = now;
          for (let i = 0; i < prepared.length; i++) {
            const answer = prepared[i];
            if (answer === undefined) continue;
            try {
              values[i] = answer();
            } catch (error) {
              prepared[i] = undefined;
              fail(from + i, task.failure(from + i, error));
            }
          }
          now = performance.now();
          const took = now - started;
          // Double the batch while doubling it would still take under half a slice.
          if (4 * took < sliceMs) batchSize = Math.min(maxBatch, 2 * batchSize);
          else if (took > sliceMs) batchSize = Math.max(1, batchSize >> 1);
          if (took <= options.instanceTimeoutMs) {
            // Then no instance of the batch took longer.
            prepared.forEach((answer, i) => answer && settle(from + i, values[i] as T, took));
          } else {
            // One may have, and the batch does not tell which: each is asked again, timed alone.
            // Nothing of the batch counted yet, so a merge sees each answer once.
            timeEach = true;
            prepared.forEach((answer, i) => answer && (now = answerTimed(from + i, answer, now)));
          }
        }
        prepared.length = 0;
        values.length = 0;
      }
      if (slow < 0) continue;
      if (now > options.deadline) {
        notReached(slow);
        continue;
      }
      const started = now;
      try {
        let value = task.slow(slow);
        if (value instanceof Promise) {
          // Only a wait makes this worker yield on its own (see ownTurn).
          wentAsync = true;
          value = await value;
        }
        now = performance.now();
        settle(slow, value, now - started);
      } catch (error) {
        now = performance.now();
        fail(slow, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, targets.length)) }, worker));
  return { answered, failures: failures.sort((a, b) => a.index - b.index).map(({ error }) => error) };
}
