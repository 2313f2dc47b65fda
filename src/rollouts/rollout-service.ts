import { EventEmitter, on } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Catalog, InstanceFilter, RolloutCounts, RolloutFailure, RolloutItem, RolloutKind, RolloutRecord, RolloutResult, RolloutState, RolloutStrategy } from '../catalog/index.js';
import { FleetqlError, isFleetqlError } from '../errors.js';
import { crashPoint, type InstanceService, type SnapshotsAhead } from '../instances/index.js';
import type { Logger } from '../logger.js';

/** What a client may give for a strategy; missing fields take these defaults. */
export const defaultStrategy: RolloutStrategy = { canary: 1, batch_size: 100, concurrency: 8, max_failures: 0, pause_after_canary: false, snapshots: true };

export interface RolloutView extends RolloutRecord {
  readonly counts: RolloutCounts;
  readonly failures: readonly RolloutFailure[];
}

/** How long one runner may hold the event loop before yielding to requests. */
const sliceMs = 4;
/** Instances taken from the catalog at a time (and, with snapshots, their snapshot entries made together). */
const batchAhead = 64;
const progressEveryMs = 100;
/**
 * Settled instances are recorded in the catalog (one transaction, one fsync) at least this often,
 * or as soon as this many wait; a crash in between costs only re-reading those files' versions.
 */
const recordEveryMs = 100;
const recordEvery = 64;

/** Told as each instance of a rollout settles (metrics); must be cheap and must not throw. */
export interface RolloutObserver {
  rolloutInstanceSettled(kind: RolloutKind, outcome: RolloutResult['outcome'], code?: string): void;
}

function validStrategy(input: Partial<Record<keyof RolloutStrategy, unknown>> | null | undefined): RolloutStrategy {
  const strategy = { ...defaultStrategy, ...Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v !== null && v !== undefined)) } as RolloutStrategy;
  const check = (name: keyof RolloutStrategy, min: number, max: number) => {
    const value = strategy[name] as number;
    if (!Number.isInteger(value) || value < min || value > max) throw new FleetqlError('INVALID_ARGUMENT', `strategy.${name} must be from ${min} to ${max}`);
  };
  check('canary', 0, 100_000);
  check('batch_size', 1, 100_000);
  check('concurrency', 1, 64);
  check('max_failures', 0, 1_000_000);
  for (const name of ['pause_after_canary', 'snapshots'] as const) {
    if (typeof strategy[name] !== 'boolean') throw new FleetqlError('INVALID_ARGUMENT', `strategy.${name} must be true or false`);
  }
  return strategy;
}

/**
 * Migration rollouts across the fleet: the instances a filter selects move to a target version in
 * waves (a canary wave, then batches), each instance in one transaction of its own, failures
 * recorded and counted against a budget that pauses the rollout. State lives in the catalog, so a
 * restart resumes RUNNING rollouts where they were; an instance already at the target (migrated
 * just before a crash) is recognised from its own file and only recorded.
 */
export class RolloutService {
  readonly #catalog: Catalog;
  readonly #instances: InstanceService;
  readonly #head: number;
  readonly #logger: Logger;
  readonly #runners = new Map<number, Promise<void>>();
  readonly #events = new EventEmitter();
  #closed = false;

  readonly #snapshotRetentionMs: number;
  readonly #observer: RolloutObserver | undefined;

  constructor(options: { catalog: Catalog; instances: InstanceService; head: number; logger: Logger; snapshotRetentionMs: number; observer?: RolloutObserver | undefined }) {
    this.#snapshotRetentionMs = options.snapshotRetentionMs;
    this.#observer = options.observer;
    this.#catalog = options.catalog;
    this.#instances = options.instances;
    this.#head = options.head;
    this.#logger = options.logger;
    this.#events.setMaxListeners(0);
  }

  view(id: number): RolloutView {
    const record = this.#catalog.rollouts.get(id);
    if (record === undefined) throw new FleetqlError('ROLLOUT_NOT_FOUND', `rollout ${id} not found`, { extensions: { rollout_id: String(id) } });
    return { ...record, counts: this.#catalog.rollouts.counts(id), failures: this.#catalog.rollouts.failures(id, 1000) };
  }

  list(options: { states?: readonly RolloutState[] | undefined; limit: number; offset: number }): RolloutRecord[] {
    return this.#catalog.rollouts.list(options);
  }

  counts(id: number): RolloutCounts {
    return this.#catalog.rollouts.counts(id);
  }

  failures(id: number): RolloutFailure[] {
    return this.#catalog.rollouts.failures(id, 1000);
  }

  start(target: number, where: InstanceFilter | null | undefined, strategyInput: Partial<Record<keyof RolloutStrategy, unknown>> | null | undefined): RolloutView {
    if (!Number.isInteger(target) || target < 1 || target > this.#head) {
      throw new FleetqlError('INVALID_ARGUMENT', `target_version must be from 1 to the head (${this.#head})`);
    }
    const strategy = validStrategy(strategyInput);
    const selected = this.#instances.list({
      where: { _and: [...(where ? [where] : []), { state: { _eq: 'ACTIVE' } }, { schema_version: { _lt: target } }] },
      orderBy: [{ id: 'asc' }],
    });
    const items = selected.map((record, index) => ({
      instance_id: record.id,
      from_version: record.schema_version,
      wave: index < strategy.canary ? 0 : 1 + Math.floor((index - strategy.canary) / strategy.batch_size),
    }));
    const record = this.#catalog.rollouts.create(target, where ?? null, strategy, items);
    this.#logger.info('rollout started', { rollout_id: record.id, target_version: target, instances: items.length });
    this.#setState(record.id, 'RUNNING');
    this.#run(record.id);
    return this.view(record.id);
  }

  pause(id: number): RolloutView {
    const { state } = this.view(id);
    if (state === 'RUNNING' || state === 'PENDING') this.#setState(id, 'PAUSED', 'paused by request');
    else if (state !== 'PAUSED') throw new FleetqlError('INVALID_ARGUMENT', `rollout ${id} is ${state} and cannot be paused`);
    return this.view(id);
  }

  /** Resumes a paused (or failed) rollout; its failed instances are tried again. */
  resume(id: number): RolloutView {
    const { state } = this.view(id);
    if (state === 'COMPLETED' || state === 'ABORTED') throw new FleetqlError('INVALID_ARGUMENT', `rollout ${id} is ${state} and cannot be resumed`);
    if (state !== 'RUNNING') {
      this.#catalog.rollouts.retryFailed(id);
      this.#setState(id, 'RUNNING');
    }
    this.#run(id);
    return this.view(id);
  }

  /** Stops a rollout for good: instances already migrated stay migrated, the rest are skipped. */
  async abort(id: number): Promise<RolloutView> {
    const { state } = this.view(id);
    if (state === 'COMPLETED' || state === 'ABORTED') throw new FleetqlError('INVALID_ARGUMENT', `rollout ${id} is ${state} and cannot be aborted`);
    this.#setState(id, 'ABORTED', 'aborted by request');
    await this.#runners.get(id);
    this.#catalog.rollouts.skipPending(id, 'rollout aborted');
    this.#emit(id);
    return this.view(id);
  }

  /**
   * Puts every instance a rollout migrated back to its pre-migration snapshot and version, in the
   * same waves. An instance written since it migrated is refused (a failure naming it) unless
   * `force`. A rollout still holding instances is aborted first (its migrated ones are rolled back).
   */
  async rollback(parentId: number, force: boolean): Promise<RolloutView> {
    const parent = this.view(parentId);
    if (parent.kind !== 'forward') throw new FleetqlError('INVALID_ARGUMENT', `rollout ${parentId} is itself a rollback`);
    if (!parent.strategy.snapshots) {
      throw new FleetqlError('SNAPSHOT_MISSING', `rollout ${parentId} ran without snapshots (strategy.snapshots: false): there is nothing to roll its instances back to`);
    }
    if (parent.state !== 'COMPLETED' && parent.state !== 'ABORTED') await this.abort(parentId);
    for (const previous of this.#catalog.rollouts.activeRollbacksOf(parentId)) await this.abort(previous);
    const items = this.#catalog.rollouts.rollbackItems(parentId);
    const target = items.reduce((min, item) => Math.min(min, item.from_version), parent.target_version);
    const record = this.#catalog.rollouts.create(target, parent.filter, parent.strategy, items, { parentId, force });
    this.#logger.info('rollback started', { rollout_id: record.id, parent_id: parentId, instances: items.length, force });
    this.#setState(record.id, 'RUNNING');
    this.#run(record.id);
    return this.view(record.id);
  }

  /** Removes snapshots of rollouts finished longer ago than the retention (and not being rolled back). */
  pruneSnapshots(): number[] {
    const before = new Date(Date.now() - this.#snapshotRetentionMs).toISOString();
    const ids = this.#catalog.rollouts.snapshotsToPrune(before);
    for (const id of ids) this.#instances.removeSnapshots(id);
    return ids;
  }

  /** Picks up the rollouts a previous process left running. */
  resumeInterrupted(): number[] {
    this.pruneSnapshots();
    const ids = this.#catalog.rollouts.running().map((r) => r.id);
    for (const id of ids) {
      this.#setState(id, 'RUNNING');
      this.#run(id);
    }
    if (ids.length > 0) this.#logger.warn('resumed rollouts interrupted by a restart', { rollout_ids: ids });
    return ids;
  }

  /** Progress events of one rollout, for the subscription: the view after every change. */
  async *progress(id: number, signal?: AbortSignal): AsyncGenerator<RolloutView> {
    yield this.view(id);
    const terminal = (state: RolloutState) => state === 'COMPLETED' || state === 'ABORTED';
    if (terminal(this.view(id).state)) return;
    for await (const _ of on(this.#events, `rollout:${id}`, signal ? { signal } : {})) {
      const view = this.view(id);
      yield view;
      if (terminal(view.state)) return;
    }
  }

  /** Waits for a rollout's runner to stop (finished, paused or aborted); for tests and shutdown. */
  async settled(id: number): Promise<RolloutView> {
    await this.#runners.get(id);
    return this.view(id);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#runners.values());
  }

  #setState(id: number, state: RolloutState, reason: string | null = null): void {
    this.#catalog.rollouts.setState(id, state, reason);
    this.#emit(id);
  }

  #emit(id: number): void {
    this.#events.emit(`rollout:${id}`);
  }

  #run(id: number): void {
    if (this.#runners.has(id)) return;
    const runner = this.#drive(id)
      .catch((error: unknown) => {
        this.#logger.error('rollout runner failed', { rollout_id: id, error });
        this.#setState(id, 'PAUSED', 'internal error; see the server log');
      })
      .finally(() => this.#runners.delete(id));
    this.#runners.set(id, runner);
  }

  /**
   * Keeps up to `concurrency` instances of the current wave in flight at all times (a sliding
   * window: a slow instance holds only its own slot), and records the results that have come in
   * in one catalog transaction every `recordEveryMs` or `recordEvery` results, so the migration
   * threads never wait for the catalog's fsync. A crash loses at most the unrecorded results, and
   * those instances are recognised on resume from the version in their own file (see
   * InstanceService.migrate) and their snapshot is already durable, so only the record is redone.
   * A wave is finished (every instance settled and recorded) before the next one starts, and the
   * failure budget, pauses, aborts and shutdown let the instances in flight finish and be recorded.
   */
  async #drive(id: number): Promise<void> {
    const { kind } = this.#catalog.rollouts.get(id)!;
    let failed = this.#catalog.rollouts.counts(id).failed;
    /** Instances in flight or settled but unrecorded: still 'pending' in the catalog, not to be taken again. */
    const taken = new Set<string>();
    const running = new Set<Promise<void>>();
    let unrecorded: RolloutResult[] = [];
    let queue: RolloutItem[] = [];
    let wave: number | undefined;
    let lastRecord = performance.now();
    /** Wakes the loop when settled results are due to be recorded, though nothing else settles. */
    let recordDue: Promise<void> | undefined;
    let lastEmit = 0;
    let sliceStart = performance.now();

    const recordSettled = () => {
      if (unrecorded.length === 0) return;
      const results = unrecorded;
      unrecorded = [];
      crashPoint('rollout:recording');
      this.#catalog.rollouts.recordResults(id, results);
      for (const result of results) {
        taken.delete(result.instance_id);
        if (result.outcome === 'failed') failed += 1;
        this.#observer?.rolloutInstanceSettled(kind, result.outcome, result.outcome === 'failed' ? result.code : undefined);
      }
      lastRecord = performance.now();
      // Progress is told at most every 100 ms (state changes always): watchers need no more.
      if (lastRecord - lastEmit > progressEveryMs) {
        this.#emit(id);
        lastEmit = lastRecord;
      }
    };
    /**
     * Snapshot entries made ahead, by instance (see InstanceService.prepareSnapshots). Making one
     * again (a resumed rollout) leaves the one there: a link is a snapshot only once its instance
     * has migrated.
     */
    const prepared = new Map<string, Promise<SnapshotsAhead>>();
    const prepare = (items: readonly RolloutItem[]) => {
      const ids = items.map((item) => item.instance_id).filter((instanceId) => !prepared.has(instanceId));
      if (ids.length === 0) return;
      const made = this.#instances.prepareSnapshots(id, ids);
      for (const instanceId of ids) prepared.set(instanceId, made);
    };
    /** The current wave has no instance left that is not queued or taken: the next wave's first batch is prepared. */
    let waveQueued = false;
    /** The next instance of the current wave not yet taken; undefined once the wave has none left. */
    const nextItem = (strategy: RolloutStrategy): RolloutItem | undefined => {
      const window = strategy.concurrency;
      const ahead = strategy.snapshots && kind === 'forward';
      if (queue.length === 0) {
        const next = this.#catalog.rollouts.nextPending(id, taken.size + Math.max(window, batchAhead));
        if (next === undefined || (wave !== undefined && next.wave !== wave)) return undefined;
        queue = next.items.filter((item) => !taken.has(item.instance_id));
        if (queue.length === 0) return undefined;
        wave = next.wave;
        waveQueued = false;
        if (ahead) prepare(queue);
      }
      if (ahead && !waveQueued && queue.length <= Math.max(window, batchAhead / 2)) {
        // Snapshot entries are made a batch ahead of the migrations: a batch waiting for its
        // directory fsync would leave every migration thread idle meanwhile. Past the end of a
        // wave too, or each wave would begin by waiting for its first batch (a wave still runs
        // only once the one before is done and recorded).
        const queued = new Set(queue.map((item) => item.instance_id));
        const next = this.#catalog.rollouts.nextPending(id, taken.size + queue.length + batchAhead);
        const more = next !== undefined && next.wave === wave ? next.items.filter((item) => !taken.has(item.instance_id) && !queued.has(item.instance_id)) : [];
        if (more.length > 0) {
          queue.push(...more);
          prepare(more);
        } else {
          waveQueued = true;
          // Not past a wave the rollout will pause after: those could wait for days.
          const pausing = wave === 0 && strategy.pause_after_canary && strategy.canary > 0;
          const following = pausing ? undefined : this.#catalog.rollouts.nextPending(id, batchAhead, wave);
          if (following !== undefined) prepare(following.items);
        }
      }
      return queue.shift();
    };

    for (;;) {
      const record = this.#catalog.rollouts.get(id)!;
      const { strategy } = record;
      const stopping = record.state !== 'RUNNING' || this.#closed;
      if (stopping) queue = [];
      else {
        for (let item; running.size < strategy.concurrency && (item = nextItem(strategy)) !== undefined; ) {
          const made = prepared.get(item.instance_id);
          prepared.delete(item.instance_id);
          const step = kind === 'rollback' ? this.#rollBackOne(record, item) : this.#migrateOne(id, record.target_version, item.instance_id, strategy.snapshots, made);
          taken.add(item.instance_id);
          const settled: Promise<void> = step.then((result) => {
            running.delete(settled);
            unrecorded.push(result);
          });
          running.add(settled);
        }
      }
      if (running.size === 0) {
        // Nothing in flight: the wave is done (or the runner is stopping); everything gets recorded.
        recordSettled();
        if (stopping) return;
        if (failed > strategy.max_failures) {
          this.#setState(id, 'PAUSED', `${failed} failure(s), more than max_failures ${strategy.max_failures}`);
          return;
        }
        const next = this.#catalog.rollouts.nextPending(id, 1);
        if (next === undefined) {
          const counts = this.#catalog.rollouts.counts(id);
          this.#setState(id, counts.failed === 0 ? 'COMPLETED' : 'FAILED', counts.failed === 0 ? null : `${counts.failed} instance(s) failed`);
          this.#logger.info('rollout finished', { rollout_id: id, ...counts });
          this.pruneSnapshots();
          return;
        }
        if (wave === 0 && next.wave !== 0 && strategy.pause_after_canary && strategy.canary > 0) {
          this.#setState(id, 'PAUSED', 'canary wave done');
          return;
        }
        wave = undefined;
        continue;
      }
      if (unrecorded.length > 0 && recordDue === undefined) {
        recordDue = sleep(Math.max(0, recordEveryMs - (performance.now() - lastRecord))).then(() => {
          recordDue = undefined;
        });
      }
      await Promise.race(recordDue === undefined ? running : [...running, recordDue]);
      // A failure is recorded at once, so the budget is checked against what the catalog shows.
      const failure = unrecorded.some((result) => result.outcome === 'failed');
      if (failure || unrecorded.length >= recordEvery || performance.now() - lastRecord >= recordEveryMs) recordSettled();
      if (failed > strategy.max_failures && !stopping) {
        this.#setState(id, 'PAUSED', `${failed} failure(s), more than max_failures ${strategy.max_failures}`);
      }
      // Steps that settle without real waiting (instances gone, say) must not keep the event loop to themselves.
      if (performance.now() - sliceStart > sliceMs) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
  }

  #migrateOne(id: number, target: number, instanceId: string, snapshot: boolean, prepared: Promise<SnapshotsAhead> | undefined): Promise<RolloutResult> {
    return this.#attempt(id, instanceId, async () => {
      const ahead = await prepared;
      const { to, changeCounter } = await this.#instances.migrate(instanceId, target, snapshot ? { snapshotOf: id, ahead } : {});
      return { version: to, change_counter: changeCounter };
    });
  }

  #rollBackOne(record: RolloutRecord, item: RolloutItem): Promise<RolloutResult> {
    return this.#attempt(record.id, item.instance_id, async () => {
      await this.#instances.restoreSnapshot(item.instance_id, record.parent_id!, { version: item.from_version, changeCounter: item.change_counter ?? null, force: record.force });
      return { version: item.from_version };
    });
  }

  /** Runs one instance's step; a failure becomes a result to record, never an exception. */
  async #attempt(id: number, instanceId: string, step: () => Promise<{ version: number; change_counter?: number | null }>): Promise<RolloutResult> {
    try {
      return { instance_id: instanceId, outcome: 'done', ...(await step()) };
    } catch (error) {
      if (isFleetqlError(error, 'INSTANCE_NOT_FOUND')) return { instance_id: instanceId, outcome: 'skipped', reason: 'the instance no longer exists' };
      const code = isFleetqlError(error) ? error.code : 'INTERNAL_SERVER_ERROR';
      const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
      const message = isFleetqlError(error) ? `${error.message}${cause}` : 'unexpected error; see the server log';
      if (!isFleetqlError(error)) this.#logger.error('rollout: unexpected error migrating an instance', { rollout_id: id, instance_id: instanceId, error });
      return { instance_id: instanceId, outcome: 'failed', code, message };
    }
  }
}
