/**
 * The fan-out on its own, with answers that need no database: warm targets are prepared in
 * batches and run with one clock reading per batch, a batch over the instance timeout is asked
 * again one by one, failures are reported per target, and slow targets take the async way.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { FleetqlError } from '../../src/errors.js';
import { fanOut, type FanOutTask } from '../../src/fleet/index.js';

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

/** Counts turns of the event loop from now until `stop`. */
function countTurns(): { stop(): number } {
  let turns = 0;
  let counting = true;
  const tick = () => {
    turns += 1;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop: () => {
      counting = false;
      return turns;
    },
  };
}

function targetsOf(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `t-${String(i).padStart(3, '0')}`);
}

test('warm targets answer in batches, each answer delivered once; slow targets take the async way', async () => {
  const targets = targetsOf(100);
  const runs = new Map<number, number>();
  const task: FanOutTask<number> = {
    // Every tenth target is cold: it must go the async way.
    prepare: (index) => (index % 10 === 3 ? undefined : () => (runs.set(index, (runs.get(index) ?? 0) + 1), index * 2)),
    slow: async (index) => {
      await new Promise((resolve) => setImmediate(resolve));
      return index * 2;
    },
    failure: (_index, error) => error,
  };
  const delivered = new Map<number, number>();
  const result = await fanOut(targets, { concurrency: 4, instanceTimeoutMs: 10_000, deadline: performance.now() + 60_000 }, task, (value, index) => {
    assert.ok(!delivered.has(index), `target ${index} delivered twice`);
    delivered.set(index, value);
  });
  assert.equal(result.answered, 100);
  assert.deepEqual(result.failures, []);
  assert.deepEqual([...delivered.keys()].sort((a, b) => a - b), [...targets.keys()]);
  for (const [index, value] of delivered) assert.equal(value, index * 2);
  assert.ok([...runs.values()].every((count) => count === 1), 'a batch within the timeout runs each answer once');
});

test('a batch over the instance timeout is asked again one by one: only the slow target is reported, the others count once', async () => {
  const targets = targetsOf(40);
  const runs = new Map<number, number>();
  const slowIndex = 5;
  const task: FanOutTask<string> = {
    prepare: (index) => () => {
      runs.set(index, (runs.get(index) ?? 0) + 1);
      if (index === slowIndex) busy(40);
      return targets[index]!;
    },
    slow: () => Promise.reject(new Error('no target is cold here')),
    failure: (_index, error) => error,
  };
  const delivered: number[] = [];
  const result = await fanOut(targets, { concurrency: 1, instanceTimeoutMs: 20, deadline: performance.now() + 60_000 }, task, (_value, index) => delivered.push(index));
  assert.deepEqual(
    result.failures.map((f) => [f.code, f.extensions['instance_id']]),
    [['INSTANCE_TIMEOUT', targets[slowIndex]]],
  );
  assert.equal(result.answered, 39);
  assert.deepEqual([...delivered].sort((a, b) => a - b), [...targets.keys()].filter((i) => i !== slowIndex), 'every other target delivered once, the slow one not at all');
  // The batch holding the slow target ran twice (a contiguous run of at most 32 targets); every
  // other target once.
  const twice = [...targets.keys()].filter((index) => runs.get(index) === 2);
  assert.ok(twice.includes(slowIndex), 'the slow one was asked again');
  assert.ok(twice.length <= 32 && twice.at(-1)! - twice[0]! === twice.length - 1, `one batch asked again: ${twice.join(' ')}`);
  for (const index of targets.keys()) if (!twice.includes(index)) assert.equal(runs.get(index), 1, `target ${index}`);
});

test('answers slower than a slice are not batched together: the event loop turns between them', async () => {
  const targets = targetsOf(30);
  const task: FanOutTask<number> = {
    prepare: (index) => () => {
      busy(3);
      return index;
    },
    slow: () => Promise.reject(new Error('no target is cold here')),
    failure: (_index, error) => error,
  };
  const turns = countTurns();
  const result = await fanOut(targets, { concurrency: 1, instanceTimeoutMs: 10_000, deadline: performance.now() + 60_000 }, task, () => undefined);
  const turned = turns.stop();
  assert.equal(result.answered, 30);
  // 90 ms of answers in slices of about 8 ms: batched 32 at a time, it would turn once or twice.
  assert.ok(turned >= 8, `${turned} turns of the event loop during the fan-out`);
});

test('cold targets answered at once by `slow` (a handle opened without a wait) still let the event loop turn every slice, and are timed', async () => {
  const targets = targetsOf(40);
  const task: FanOutTask<number> = {
    prepare: () => undefined,
    slow: (index) => {
      busy(index === 7 ? 30 : 2);
      return index;
    },
    failure: (_index, error) => error,
  };
  const turns = countTurns();
  const delivered: number[] = [];
  const result = await fanOut(targets, { concurrency: 4, instanceTimeoutMs: 20, deadline: performance.now() + 60_000 }, task, (value) => delivered.push(value));
  const turned = turns.stop();
  assert.deepEqual(
    result.failures.map((f) => [f.code, f.extensions['instance_id']]),
    [['INSTANCE_TIMEOUT', targets[7]]],
    'the slow open is timed like an async one',
  );
  assert.deepEqual([...delivered].sort((a, b) => a - b), [...targets.keys()].filter((i) => i !== 7), 'each answered target once');
  // About 108 ms of opens in slices of about 8 ms.
  assert.ok(turned >= 8, `${turned} turns of the event loop during the fan-out`);
});

test('started from an I/O callback, as a request is, a fan-out answers nothing in that turn, and a timer runs after its first slice', async () => {
  // What follows runs in an I/O callback's turn of the event loop (the poll phase), as a request's resolvers do.
  await fs.promises.stat('.');
  const targets = targetsOf(20);
  let answered = 0;
  let answeredInCall = 0;
  let calling = true;
  let answeredAtTimer = -1;
  setTimeout(() => (answeredAtTimer = answered), 0);
  const task: FanOutTask<number> = {
    prepare: (index) => () => {
      if (calling) answeredInCall += 1;
      busy(2);
      answered += 1;
      return index;
    },
    slow: () => Promise.reject(new Error('no target is cold here')),
    failure: (_index, error) => error,
  };
  const running = fanOut(targets, { concurrency: 4, instanceTimeoutMs: 10_000, deadline: performance.now() + 60_000 }, task, () => undefined);
  calling = false;
  const result = await running;
  assert.equal(result.answered, 20);
  assert.equal(answeredInCall, 0, 'nothing answered in the caller\'s turn');
  // 2 ms answers in slices of about 8 ms: at most 5 in the first slice. Had the first slice run in
  // the caller's turn, the second would have followed in the same turn, before any timer.
  assert.ok(answeredAtTimer >= 1 && answeredAtTimer <= 5, `${answeredAtTimer} answers before the timer ran`);
});

test('failures are per target: in preparing, in answering (as the task reports them), in the async way; and past the deadline nothing starts', async () => {
  const targets = targetsOf(12);
  const task: FanOutTask<number> = {
    prepare: (index) => {
      if (index === 1) throw new FleetqlError('INSTANCE_UNAVAILABLE', 'cannot be read');
      if (index === 2) return () => { throw new Error('disk on fire'); };
      if (index === 3) return undefined;
      return () => index;
    },
    slow: async () => {
      throw new FleetqlError('INSTANCE_QUARANTINED', 'quarantined');
    },
    failure: (index, error) => new FleetqlError('QUERY_TOO_COSTLY', `reported for ${index}: ${(error as Error).message}`),
  };
  const result = await fanOut(targets, { concurrency: 2, instanceTimeoutMs: 10_000, deadline: performance.now() + 60_000 }, task, () => undefined);
  assert.deepEqual(
    result.failures.map((f) => [f.extensions['instance_id'], f.code]),
    [
      ['t-001', 'INSTANCE_UNAVAILABLE'],
      ['t-002', 'QUERY_TOO_COSTLY'],
      ['t-003', 'INSTANCE_QUARANTINED'],
    ],
  );
  assert.match(result.failures[1]!.message, /reported for 2: disk on fire/);
  assert.equal(result.answered, 9);

  let ran = 0;
  const late = await fanOut(targets, { concurrency: 2, instanceTimeoutMs: 10_000, deadline: performance.now() - 1 }, { prepare: () => () => ++ran, slow: async () => ++ran, failure: (_i, e) => e }, () => undefined);
  assert.equal(ran, 0, 'nothing runs past the deadline');
  assert.deepEqual(new Set(late.failures.map((f) => f.code)), new Set(['INSTANCE_TIMEOUT']));
  assert.equal(late.failures.length, 12);
});
