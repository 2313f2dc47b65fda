import { instanceStates, type InstanceFilter, type InstanceOrderBy, type InstanceRecord } from '../catalog/index.js';
import type { AppliedMigration } from '../migrations/index.js';
import { pageArgs, pageSize } from '../query/index.js';
import type { Builder } from './builder.js';
import { access } from './field-access.js';
import { comparisonExp } from './comparison-exp.js';
import type { SharedTypes } from './shared-types.js';

/** The instance admin API: types, queries, lifecycle mutations. Returns the Instance type for the data API. */
export function registerInstanceTypes(builder: Builder, shared: SharedTypes) {
  const { OrderBy } = shared;

  const InstanceStateEnum = builder.enumType('instance_state', {
    description: 'Lifecycle state. CREATING and DESTROYING are journaled transitions that a restart finishes or rolls back.',
    values: instanceStates,
  });

  const AppliedMigrationRef = builder.objectRef<AppliedMigration>('AppliedMigration').implement({
    description: 'A migration as recorded inside the instance file when it was applied.',
    fields: (t) => ({
      version: t.exposeInt('version'),
      name: t.exposeString('name'),
      checksum: t.exposeString('checksum', { description: 'SHA-256 (hex) of the migration file that was applied.' }),
      applied_at: t.field({ type: 'DateTime', resolve: (m) => m.applied_at }),
    }),
  });

  const Instance = builder.objectRef<InstanceRecord>('Instance').implement({
    description: 'One instance: a logical unit with its own libSQL database file.',
    fields: (t) => ({
      id: t.exposeID('id'),
      labels: t.field({ type: 'JSON', description: 'Flat string key/value pairs (org, region, plan, …).', resolve: (i) => i.labels }),
      state: t.field({ type: InstanceStateEnum, resolve: (i) => i.state }),
      schema_version: t.exposeInt('schema_version', { description: 'The last migration applied to this instance.' }),
      size_bytes: t.field({
        type: 'BigInt',
        description: 'Bytes on disk of the database file and its journal; 0 without a file.',
        resolve: (i, _args, ctx) => ctx.instances.sizeBytes(i),
      }),
      created_at: t.field({ type: 'DateTime', resolve: (i) => i.created_at }),
      updated_at: t.field({ type: 'DateTime', resolve: (i) => i.updated_at }),
      migrations_applied: t.field({
        type: [AppliedMigrationRef],
        description: 'The migrations recorded inside the instance file (opens it).',
        resolve: (i, _args, ctx) => ctx.instances.appliedMigrations(i.id),
      }),
    }),
  });

  const StringComparison = shared.comparison('String');
  const IntComparison = shared.comparison('Int');
  const DateTimeComparison = shared.comparison('DateTime');
  const StateComparison = comparisonExp(builder, 'instance_state_comparison_exp', InstanceStateEnum);

  const LabelsComparison = builder.inputType('labels_comparison_exp', {
    description: 'Select instances by labels.',
    fields: (t) => ({
      _contains: t.field({ type: 'JSON', description: 'Every given key has exactly the given value, e.g. {org: "acme"}.' }),
      _has_key: t.string(),
      _has_keys_any: t.stringList(),
      _has_keys_all: t.stringList(),
    }),
  });

  const InstancesBoolExp = builder.inputRef<InstanceFilter, false>('instances_bool_exp').implement({
    description: 'Selects instances from the catalog alone: no instance file is opened to answer it.',
    fields: (t) => ({
      _and: t.field({ type: [InstancesBoolExp] }),
      _or: t.field({ type: [InstancesBoolExp] }),
      _not: t.field({ type: InstancesBoolExp }),
      id: t.field({ type: StringComparison }),
      state: t.field({ type: StateComparison }),
      schema_version: t.field({ type: IntComparison }),
      created_at: t.field({ type: DateTimeComparison }),
      updated_at: t.field({ type: DateTimeComparison }),
      labels: t.field({ type: LabelsComparison }),
    }),
  });

  const InstancesOrderBy = builder.inputRef<InstanceOrderBy, false>('instances_order_by').implement({
    description: 'One column per list element; ties are broken by id.',
    fields: (t) => ({
      id: t.field({ type: OrderBy }),
      state: t.field({ type: OrderBy }),
      schema_version: t.field({ type: OrderBy }),
      created_at: t.field({ type: OrderBy }),
      updated_at: t.field({ type: OrderBy }),
    }),
  });

  builder.queryType({
    fields: (t) => ({
      instance: t.field({
        type: Instance,
        nullable: true,
        description: 'One instance by id. Unknown ids answer INSTANCE_NOT_FOUND.',
        ...access('instance-read'),
        args: { id: t.arg.id({ required: true }) },
        resolve: (_root, args, ctx) => ctx.instances.get(args.id),
      }),
      instances: t.field({
        type: [Instance],
        description: `Instances from the catalog. Destroyed instances are left out unless the filter names a state. limit defaults to ${pageSize.default}, at most ${pageSize.max}.`,
        ...access('instance-read'),
        args: {
          where: t.arg({ type: InstancesBoolExp }),
          order_by: t.arg({ type: [InstancesOrderBy] }),
          limit: t.arg.int(),
          offset: t.arg.int(),
        },
        resolve: (_root, args, ctx) =>
          ctx.instances.list({ where: args.where ?? undefined, orderBy: args.order_by ?? undefined, ...pageArgs(args.limit, args.offset) }),
      }),
    }),
  });

  const InstancesAggregate = builder.objectRef<{ where: InstanceFilter | undefined }>('instances_aggregate').implement({
    fields: (t) => ({
      aggregate: t.field({
        type: builder.objectRef<{ where: InstanceFilter | undefined }>('instances_aggregate_fields').implement({
          fields: (f) => ({
            count: f.int({ resolve: (parent, _args, ctx) => ctx.instances.count(parent.where) }),
          }),
        }),
        resolve: (parent) => parent,
      }),
    }),
  });

  builder.queryField('instances_aggregate', (t) =>
    t.field({
      type: InstancesAggregate,
      description: 'Counts instances from the catalog, with the same filter as instances.',
      ...access('instance-read'),
      args: { where: t.arg({ type: InstancesBoolExp }) },
      resolve: (_root, args) => ({ where: args.where ?? undefined }),
    }),
  );

  builder.mutationType({
    fields: (t) => ({
      create_instance: t.field({
        type: Instance,
        description: 'Creates an instance and its database file at the head migration version.',
        args: { id: t.arg.id({ required: true }), labels: t.arg({ type: 'JSON' }) },
        resolve: (_root, args, ctx) => ctx.instances.create(args.id, args.labels),
      }),
      set_instance_labels: t.field({
        type: Instance,
        description: 'Replaces all labels of an instance.',
        args: { id: t.arg.id({ required: true }), labels: t.arg({ type: 'JSON', required: true }) },
        resolve: (_root, args, ctx) => ctx.instances.setLabels(args.id, args.labels),
      }),
      destroy_instance: t.field({
        type: Instance,
        description:
          'Destroys an instance. With archive: true (the default) it is archived first and its file removed only after the archive was read back and verified (it stays restorable with restore_instance); archive: false deletes it for good.',
        args: { id: t.arg.id({ required: true }), archive: t.arg.boolean({ defaultValue: true, required: true }) },
        resolve: (_root, args, ctx) => (args.archive ? ctx.archives.destroy(args.id) : ctx.instances.destroy(args.id)),
      }),
    }),
  });
  return { Instance, InstancesBoolExp };
}
