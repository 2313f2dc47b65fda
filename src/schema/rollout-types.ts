import { rolloutStates, type RolloutCounts, type RolloutFailure, type RolloutStrategy } from '../catalog/index.js';
import { FleetqlError } from '../errors.js';
import { pageArgs } from '../query/index.js';
import type { RolloutView } from '../rollouts/index.js';
import type { Builder } from './builder.js';
import { access } from './field-access.js';

type AnyRef = any;

function rolloutId(raw: string | number): number {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id < 1) throw new FleetqlError('ROLLOUT_NOT_FOUND', `rollout ${String(raw).slice(0, 40)} not found`);
  return id;
}

/** Rollouts: types, queries, the lifecycle mutations and the progress subscription. */
export function registerRolloutTypes(builder: Builder, InstancesBoolExp: AnyRef): void {
  const RolloutState = builder.enumType('rollout_state', { values: rolloutStates });
  const RolloutKind = builder.enumType('rollout_kind', { values: ['FORWARD', 'ROLLBACK'] as const });

  const Strategy = builder.objectRef<RolloutStrategy>('rollout_strategy').implement({
    fields: (t) => ({
      canary: t.exposeInt('canary'),
      batch_size: t.exposeInt('batch_size'),
      concurrency: t.exposeInt('concurrency'),
      max_failures: t.exposeInt('max_failures'),
      pause_after_canary: t.exposeBoolean('pause_after_canary'),
      snapshots: t.exposeBoolean('snapshots'),
    }),
  });

  const StrategyInput = builder.inputType('rollout_strategy_input', {
    description: 'How to roll out: a canary wave first, then batches; the rollout pauses itself past max_failures.',
    fields: (t) => ({
      canary: t.int({ description: 'Instances in the first wave (default 1).' }),
      batch_size: t.int({ description: 'Instances per following wave (default 100).' }),
      concurrency: t.int({ description: 'Instances in flight at once (default 8, at most 64): as one settles the next of its wave starts. Their file work runs on the migration worker threads (FLEETQL_MIGRATION_THREADS), requests served meanwhile.' }),
      max_failures: t.int({ description: 'Failures tolerated before the rollout pauses itself (default 0).' }),
      pause_after_canary: t.boolean({ description: 'Pause after the canary wave (default false).' }),
      snapshots: t.boolean({
        description: 'Keep each instance file as it was before migrating it, so the rollout can be rolled back (default true). With the rollback journal this costs no copy of its own: a migrated copy replaces the file, and the old file is kept. false: each file is migrated where it is, nothing is kept, and rollback_rollout answers SNAPSHOT_MISSING.',
      }),
    }),
  });

  const Counts = builder.objectRef<RolloutCounts>('rollout_counts').implement({
    fields: (t) => ({
      total: t.exposeInt('total'),
      done: t.exposeInt('done'),
      failed: t.exposeInt('failed'),
      skipped: t.exposeInt('skipped', { description: 'Instances that left the rollout (destroyed meanwhile, or the rollout was aborted).' }),
      remaining: t.exposeInt('remaining'),
    }),
  });

  const Failure = builder.objectRef<RolloutFailure>('rollout_failure').implement({
    fields: (t) => ({
      instance_id: t.exposeID('instance_id'),
      wave: t.exposeInt('wave'),
      code: t.exposeString('code'),
      message: t.exposeString('message'),
      at: t.field({ type: 'DateTime', resolve: (f) => f.at }),
    }),
  });

  const Rollout = builder.objectRef<RolloutView>('Rollout').implement({
    description: 'Moving a set of instances to a target migration version, in waves.',
    fields: (t) => ({
      id: t.id({ resolve: (r) => String(r.id) }),
      kind: t.field({ type: RolloutKind, resolve: (r) => (r.kind === 'rollback' ? 'ROLLBACK' : 'FORWARD') }),
      rolls_back: t.id({ nullable: true, description: 'For a rollback: the rollout it undoes.', resolve: (r) => (r.parent_id === null ? null : String(r.parent_id)) }),
      force: t.exposeBoolean('force', { description: 'A rollback that drops writes made after the migration.' }),
      state: t.field({ type: RolloutState, resolve: (r) => r.state }),
      target_version: t.exposeInt('target_version'),
      where: t.field({ type: 'JSON', nullable: true, description: 'The instance filter it was started with.', resolve: (r) => r.filter ?? null }),
      strategy: t.field({ type: Strategy, resolve: (r) => r.strategy }),
      counts: t.field({ type: Counts, resolve: (r) => r.counts }),
      failures: t.field({ type: [Failure], description: 'Instances that failed (at most 1,000), each rolled back to its old version and still served.', resolve: (r) => r.failures }),
      pause_reason: t.exposeString('pause_reason', { nullable: true }),
      created_at: t.field({ type: 'DateTime', resolve: (r) => r.created_at }),
      started_at: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.started_at }),
      updated_at: t.field({ type: 'DateTime', resolve: (r) => r.updated_at }),
      finished_at: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.finished_at }),
    }),
  });

  builder.queryFields((t) => ({
    rollouts: t.field({
      type: [Rollout],
      description: 'Rollouts, newest first.',
      ...access('operator-read'),
      args: { state: t.arg({ type: [RolloutState] }), limit: t.arg.int(), offset: t.arg.int() },
      resolve: (_root, args, ctx) => ctx.rollouts.list({ states: args.state ?? undefined, ...pageArgs(args.limit, args.offset) }).map((r) => ctx.rollouts.view(r.id)),
    }),
    rollout: t.field({
      type: Rollout,
      nullable: true,
      ...access('operator-read'),
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => ctx.rollouts.view(rolloutId(args.id)),
    }),
  }));

  builder.mutationFields((t) => ({
    start_rollout: t.field({
      type: Rollout,
      description: 'Moves the ACTIVE instances the filter selects that are behind target_version, in waves. ROLLOUT_CONFLICT if an active rollout holds any of them.',
      args: { target_version: t.arg.int({ required: true }), where: t.arg({ type: InstancesBoolExp }), strategy: t.arg({ type: StrategyInput }) },
      resolve: (_root, args, ctx) => ctx.rollouts.start(args.target_version, args.where ?? undefined, args.strategy ?? undefined),
    }),
    pause_rollout: t.field({ type: Rollout, args: { id: t.arg.id({ required: true }) }, resolve: (_root, args, ctx) => ctx.rollouts.pause(rolloutId(args.id)) }),
    resume_rollout: t.field({
      type: Rollout,
      description: 'Continues a paused or failed rollout; failed instances are tried again.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => ctx.rollouts.resume(rolloutId(args.id)),
    }),
    rollback_rollout: t.field({
      type: Rollout,
      description:
        'Puts every instance the rollout migrated back to its pre-migration snapshot and version, in the same waves. Instances written since they migrated are refused (named in failures, code WRITTEN_SINCE_MIGRATION) unless force: true, which drops those writes.',
      args: { id: t.arg.id({ required: true }), force: t.arg.boolean({ defaultValue: false, required: true }) },
      resolve: (_root, args, ctx) => ctx.rollouts.rollback(rolloutId(args.id), args.force),
    }),
    abort_rollout: t.field({
      type: Rollout,
      description: 'Stops a rollout for good: migrated instances stay migrated, the others are skipped.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => ctx.rollouts.abort(rolloutId(args.id)),
    }),
  }));

  builder.subscriptionType({
    fields: (t) => ({
      rollout_progress: t.field({
        type: Rollout,
        description: 'The rollout now, then after every wave and state change, until it completes or is aborted (over SSE).',
        ...access('operator-read'),
        args: { id: t.arg.id({ required: true }) },
        subscribe: (_root, args, ctx) => ctx.rollouts.progress(rolloutId(args.id), ctx.signal),
        resolve: (view: RolloutView) => view,
      }),
    }),
  });
}
