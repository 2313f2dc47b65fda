import type { GraphQLResolveInfo } from 'graphql';
import type { FleetAnswer, FleetScope } from '../fleet/index.js';
import type { DataModel } from '../query/index.js';
import type { Builder, SchemaTypes } from './builder.js';
import { access } from './field-access.js';
import { settleFailures } from './instance-failures.js';
import { aggregateNeeds, connectionArgs, groupsArgs, listArgs, selectedFields, type TableRefs } from './table-types.js';

type AnyRef = any;
type Ctx = SchemaTypes['Context'];

/** Fields selected directly under the fleet field (following fragments), the fan-outs it will run. */
function countFleetFields(info: GraphQLResolveInfo): number {
  let count = 0;
  for (const node of info.fieldNodes) {
    for (const field of selectedFields(node.selectionSet, info)) if (field.name.value !== 'instances_matched' && field.name.value !== '__typename') count += 1;
  }
  return count;
}

/** A fleet answer's value, its failed instances handed to GraphQL (see settleFailures). */
function settle<T>(scope: FleetScope, answer: FleetAnswer<T>, info: GraphQLResolveInfo, ctx: Ctx): T {
  return settleFailures(answer.value, answer.failures, scope.partial, info, ctx);
}

/** `fleet(where, partial, concurrency, timeout_ms)` and, per table, the same fields as inside one instance. */
export function registerFleetTypes(builder: Builder, model: DataModel, refs: Map<string, TableRefs>, InstancesBoolExp: AnyRef): void {
  const b = builder as any;
  const Fleet = b.objectRef('Fleet').implement({
    description: 'Rows of every selected instance, answered by a concurrent fan-out and merged as if they were one table with an _instance_id column.',
    fields: (t: AnyRef) => {
      const fields: Record<string, unknown> = {
        instances_matched: t.int({ description: 'How many instances the filter selected (and the fleet fields ask).', resolve: (scope: FleetScope) => scope.targets.length }),
      };
      for (const table of model.tables) {
        const r = refs.get(table.sql)!;
        const n = table.name;
        fields[n] = t.field({
          type: [r.row],
          description: `Rows of ${table.sql} across the fleet, ordered as asked, ties broken by _instance_id then key.`,
          args: listArgs(t, r),
          resolve: async (scope: FleetScope, args: any, ctx: Ctx, info: GraphQLResolveInfo) => settle(scope, await ctx.fleet.list(scope, table, args), info, ctx),
        });
        fields[`${n}_aggregate`] = t.field({
          type: r.aggregate,
          args: { where: t.arg({ type: r.boolExp }) },
          resolve: async (scope: FleetScope, args: any, ctx: Ctx, info: GraphQLResolveInfo) => settle(scope, await ctx.fleet.aggregate(scope, table, args.where, aggregateNeeds(info)), info, ctx),
        });
        fields[`${n}_groups`] = t.field({
          type: [r.group],
          args: groupsArgs(t, r),
          resolve: async (scope: FleetScope, args: any, ctx: Ctx, info: GraphQLResolveInfo) => settle(scope, await ctx.fleet.groups(scope, table, args), info, ctx),
        });
        fields[`${n}_connection`] = t.field({
          type: r.connection,
          args: connectionArgs(t, r),
          resolve: async (scope: FleetScope, args: any, ctx: Ctx, info: GraphQLResolveInfo) => settle(scope, await ctx.fleet.connection(scope, table, args), info, ctx),
        });
      }
      return fields;
    },
  });

  b.queryField('fleet', (t: AnyRef) =>
    t.field({
      type: Fleet,
      description:
        'A question about many instances. The filter is answered by the catalog (no other instance file is opened); each fleet field fans out over the selected instances. An instance that fails adds one error (code, instance_id) and leaves the others; partial: false fails the field instead.',
      ...access('instance-read'),
      args: {
        where: t.arg({ type: InstancesBoolExp }),
        partial: t.arg.boolean({ defaultValue: true, required: true }),
        concurrency: t.arg.int(),
        timeout_ms: t.arg.int({ description: 'Per-instance time limit.' }),
      },
      resolve: (_root: unknown, args: any, ctx: Ctx, info: GraphQLResolveInfo) => ctx.fleet.select(args, countFleetFields(info)),
    }),
  );
}
