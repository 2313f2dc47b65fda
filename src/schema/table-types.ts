import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import type { InstanceRecord } from '../catalog/index.js';
import type { AggregateResult, Connection, GroupResult, MutationResult, Row } from '../data/index.js';
import type { ColumnKind, InstanceSchema } from '../migrations/index.js';
import { isComparable, isSummable, pageSize, toGraphQL, type AggregateNeeds, type ColumnModel, type DataModel, type TableModel } from '../query/index.js';
import type { Builder, SchemaTypes } from './builder.js';
import { access } from './field-access.js';
import { settleFailures } from './instance-failures.js';
import type { ScalarName, SharedTypes } from './shared-types.js';

/* Types are generated in loops over introspected tables, so field maps are built as plain records;
   Pothos' static field typing cannot follow names known only at runtime. */
type Fields = Record<string, any>;
type AnyRef = any;

const scalarOf: Record<ColumnKind, ScalarName> = {
  integer: 'BigInt',
  real: 'Float',
  numeric: 'Float',
  text: 'String',
  datetime: 'String',
  blob: 'Base64',
  boolean: 'Boolean',
  json: 'JSON',
  any: 'JSON',
};

/** The fields of a selection set, fragments (inline or named) followed; directives are not evaluated. */
export function selectedFields(selectionSet: SelectionSetNode | undefined, info: GraphQLResolveInfo): FieldNode[] {
  const fields: FieldNode[] = [];
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === Kind.FIELD) fields.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) fields.push(...selectedFields(selection.selectionSet, info));
    else fields.push(...selectedFields(info.fragments[selection.name.value]?.selectionSet, info));
  }
  return fields;
}

/**
 * The aggregate functions a `t_aggregate` field's selection reads (`aggregate { sum { cpus } }` →
 * sum of cpus), so only those are computed. It may over-approximate (a field under @skip counts),
 * never under-approximate: a value read but not computed fails loudly (see `at` below).
 */
export function aggregateNeeds(info: GraphQLResolveInfo): AggregateNeeds {
  const wanted = new Set<string>();
  for (const node of info.fieldNodes) {
    for (const aggregate of selectedFields(node.selectionSet, info)) {
      if (aggregate.name.value !== 'aggregate') continue;
      for (const fn of selectedFields(aggregate.selectionSet, info)) {
        for (const column of selectedFields(fn.selectionSet, info)) wanted.add(`${fn.name.value}:${column.name.value}`);
      }
    }
  }
  return (fn, column) => wanted.has(`${fn}:${column.field}`);
}

export interface TableRefs {
  row: AnyRef;
  boolExp: AnyRef;
  orderBy: AnyRef;
  selectColumn: AnyRef;
  aggregateFields: AnyRef;
  aggregate: AnyRef;
  group: AnyRef;
  groupsOrderBy: AnyRef;
  connection: AnyRef;
  insertInput: AnyRef;
  setInput: AnyRef;
  incInput: AnyRef | undefined;
  pkColumns: AnyRef;
  onConflict: AnyRef | undefined;
  mutationResponse: AnyRef;
}

const pageDescription = `Default ${pageSize.default}, at most ${pageSize.max}.`;

/** Arguments of a row list (`t`, array relationships), the same inside an instance and the fleet. */
export function listArgs(t: AnyRef, r: TableRefs): Fields {
  return { where: t.arg({ type: r.boolExp }), order_by: t.arg({ type: [r.orderBy] }), limit: t.arg.int({ description: pageDescription }), offset: t.arg.int() };
}

export function groupsArgs(t: AnyRef, r: TableRefs): Fields {
  return {
    grouping_keys: t.arg({ type: [r.selectColumn], required: true }),
    where: t.arg({ type: r.boolExp }),
    order_by: t.arg({ type: [r.groupsOrderBy] }),
    limit: t.arg.int({ description: pageDescription }),
  };
}

export function connectionArgs(t: AnyRef, r: TableRefs): Fields {
  return { first: t.arg.int({ description: pageDescription }), after: t.arg.string(), where: t.arg({ type: r.boolExp }), order_by: t.arg({ type: [r.orderBy] }) };
}

/** Coverage of an answer from one instance. */
const single = { targeted: 1, answered: 1, failed: 0 };

/**
 * A NOT NULL column is a non-null field only if every version that has its table has the column:
 * an instance behind head reads columns it lacks as null.
 */
function nonNullEverywhere(table: TableModel, column: ColumnModel, versions: readonly InstanceSchema[]): boolean {
  if (!column.notNull) return false;
  return versions.every((schema) => {
    const info = schema.tables.get(table.sql);
    return info === undefined || info.column(column.sql) !== undefined;
  });
}

function keyArgs(t: AnyRef, table: TableModel): Fields {
  return Object.fromEntries(table.key.map((c) => [c.field, t.arg({ type: scalarOf[c.kind], required: true })]));
}

function argsToKey(table: TableModel, args: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(table.key.map((c) => [c.field, args[c.field]]));
}

/**
 * Generates the data API from the data model: per table its row, filter, order, aggregate, group,
 * connection and mutation types, the fields inside `Instance`, and the root mutations.
 */
export function registerTableTypes(builder: Builder, shared: SharedTypes, model: DataModel, versions: readonly InstanceSchema[], Instance: AnyRef): Map<string, TableRefs> {
  const refs = new Map<string, TableRefs>();
  if (model.tables.length === 0) return refs;
  const b = builder as any;

  for (const table of model.tables) {
    const n = table.name;
    const writable = table.columns.filter((c) => !c.generated);
    const summable = table.columns.filter(isSummable);
    refs.set(table.sql, {
      row: b.objectRef(n),
      boolExp: b.inputRef(`${n}_bool_exp`),
      orderBy: b.inputRef(`${n}_order_by`),
      selectColumn: b.enumType(`${n}_select_column`, {
        description: `Columns of ${n}.`,
        values: Object.fromEntries(table.columns.map((c) => [c.field, { value: c.field }])),
      }),
      aggregateFields: b.objectRef(`${n}_aggregate_fields`),
      aggregate: b.objectRef(`${n}_aggregate`),
      group: b.objectRef(`${n}_group`),
      groupsOrderBy: b.inputRef(`${n}_groups_order_by`),
      connection: b.objectRef(`${n}_connection`),
      insertInput: b.inputRef(`${n}_insert_input`),
      setInput: b.inputRef(`${n}_set_input`),
      incInput: summable.length > 0 ? b.inputRef(`${n}_inc_input`) : undefined,
      pkColumns: b.inputRef(`${n}_pk_columns_input`),
      onConflict: table.constraints.length > 0 && writable.length > 0 ? b.inputRef(`${n}_on_conflict`) : undefined,
      mutationResponse: b.objectRef(`${n}_mutation_response`),
    });
  }

  for (const table of model.tables) {
    const r = refs.get(table.sql)!;
    const n = table.name;
    const writable = table.columns.filter((c) => !c.generated);
    const summable = table.columns.filter(isSummable);
    const comparable = table.columns.filter(isComparable);

    r.row.implement({
      description: `A row of ${table.sql}${table.rowidKey ? ' (no declared primary key: keyed by _rowid)' : ''}.`,
      fields: (t: AnyRef) => {
        const fields: Fields = {
          _instance_id: t.id({ description: 'The instance this row belongs to.', resolve: (row: Row) => row.instanceId }),
        };
        if (table.rowidKey) fields['_rowid'] = t.field({ type: 'BigInt', resolve: (row: Row) => row.get('rowid') });
        table.columns.forEach((column, at) => {
          fields[column.field] = t.field({
            type: scalarOf[column.kind],
            nullable: !nonNullEverywhere(table, column, versions),
            ...(column.field !== column.sql ? { description: `Column "${column.sql}".` } : {}),
            // A row's values come in the table's column order (Row): one field, one array read.
            resolve: (row: Row) => toGraphQL(column.kind, row.values[at] ?? null),
          });
        });
        for (const relationship of table.relationships) {
          const target = refs.get(relationship.target)!;
          fields[relationship.field] =
            relationship.kind === 'object'
              ? t.field({
                  type: target.row,
                  nullable: true,
                  description: `The ${relationship.target} row this row references (${relationship.columns.join(', ')}).`,
                  resolve: async (row: Row, _args: unknown, ctx: SchemaTypes['Context']) => (await ctx.loaders.load(row, relationship, {}))[0] ?? null,
                })
              : t.field({
                  type: [target.row],
                  description: `The ${relationship.target} rows that reference this row (${relationship.targetColumns.join(', ')}).`,
                  args: listArgs(t, target),
                  resolve: (row: Row, args: Record<string, unknown>, ctx: SchemaTypes['Context']) => ctx.loaders.load(row, relationship, args),
                });
        }
        return fields;
      },
    });

    r.boolExp.implement({
      description: `Filter on ${n}: every given condition must hold.`,
      fields: (t: AnyRef) => {
        const fields: Fields = { _and: t.field({ type: [r.boolExp] }), _or: t.field({ type: [r.boolExp] }), _not: t.field({ type: r.boolExp }) };
        for (const column of table.columns) fields[column.field] = t.field({ type: shared.comparison(scalarOf[column.kind]) });
        for (const relationship of table.relationships) fields[relationship.field] = t.field({ type: refs.get(relationship.target)!.boolExp });
        return fields;
      },
    });

    r.orderBy.implement({
      description: `Order of ${n} rows: one column per list element. Ties are broken by the key.`,
      fields: (t: AnyRef) => Object.fromEntries(table.columns.map((c) => [c.field, t.field({ type: shared.OrderBy })])),
    });

    const fieldsOf = (type: string, columns: readonly ColumnModel[], scalar: (c: ColumnModel) => ScalarName, value: (result: AggregateResult, c: ColumnModel) => unknown) =>
      columns.length === 0
        ? undefined
        : b.objectRef(`${n}_${type}_fields`).implement({
            fields: (t: AnyRef) =>
              Object.fromEntries(columns.map((c) => [c.field, t.field({ type: scalar(c), nullable: true, resolve: (result: AggregateResult) => value(result, c) })])),
          });
    const at = (result: AggregateResult, name: string) => {
      const index = result.layout.index.get(name);
      if (index === undefined) throw new Error(`aggregate term ${name} was read but not computed`);
      return result.values[index] ?? null;
    };
    const SumFields = fieldsOf('sum', summable, (c) => (c.kind === 'integer' ? 'BigInt' : 'Float'), (res, c) =>
      c.kind === 'integer' ? at(res, `sum:${c.sql}`) : toGraphQL('real', at(res, `sum:${c.sql}`)),
    );
    const AvgFields = fieldsOf('avg', summable, () => 'Float', (res, c) => toGraphQL('real', at(res, `avg:${c.sql}`)));
    const MinFields = fieldsOf('min', comparable, (c) => scalarOf[c.kind], (res, c) => toGraphQL(c.kind, at(res, `min:${c.sql}`)));
    const MaxFields = fieldsOf('max', comparable, (c) => scalarOf[c.kind], (res, c) => toGraphQL(c.kind, at(res, `max:${c.sql}`)));

    r.aggregateFields.implement({
      fields: (t: AnyRef) => {
        const fields: Fields = {
          count: t.int({
            args: { columns: t.arg({ type: [r.selectColumn] }), distinct: t.arg.boolean() },
            description: 'Rows; with columns, rows where they are all non-null; with distinct, distinct values of them.',
            resolve: async (result: AggregateResult, args: { columns?: string[] | null; distinct?: boolean | null }, ctx: SchemaTypes['Context'], info: GraphQLResolveInfo) => {
              const columns = (args.columns ?? []).map((field) => table.byField(field)!);
              const distinct = args.distinct === true;
              if (columns.length === 0) return Number(at(result, 'count') ?? 0);
              const { value, failures, partial } = await result.count(columns, distinct);
              return settleFailures(value, failures, partial, info, ctx);
            },
          }),
        };
        const self = (result: AggregateResult) => result;
        if (SumFields) fields['sum'] = t.field({ type: SumFields, resolve: self });
        if (AvgFields) fields['avg'] = t.field({ type: AvgFields, resolve: self });
        if (MinFields) fields['min'] = t.field({ type: MinFields, resolve: self });
        if (MaxFields) fields['max'] = t.field({ type: MaxFields, resolve: self });
        return fields;
      },
    });
    r.aggregate.implement({
      fields: (t: AnyRef) => ({
        aggregate: t.field({ type: r.aggregateFields, resolve: (result: AggregateResult) => result }),
        coverage: t.field({ type: shared.Coverage, resolve: (result: AggregateResult) => result.coverage ?? single }),
      }),
    });

    const GroupKey = b.objectRef(`${n}_group_key`).implement({
      description: `The grouping key values of a ${n} group; columns not grouped by are null.`,
      fields: (t: AnyRef) =>
        Object.fromEntries(
          table.columns.map((c) => [
            c.field,
            t.field({
              type: scalarOf[c.kind],
              nullable: true,
              resolve: (group: GroupResult) => {
                const index = group.keys.indexOf(c);
                return index < 0 ? null : toGraphQL(c.kind, group.keyValues[index]);
              },
            }),
          ]),
        ),
    });
    r.group.implement({
      fields: (t: AnyRef) => ({
        group_key: t.field({ type: GroupKey, resolve: (group: GroupResult) => group }),
        group_aggregate: t.field({ type: r.aggregateFields, resolve: (group: GroupResult) => group.aggregate }),
        coverage: t.field({ type: shared.Coverage, resolve: (group: GroupResult) => group.coverage ?? single }),
      }),
    });
    r.groupsOrderBy.implement({
      description: 'Order of groups: by a grouping key or by _count, one per list element.',
      fields: (t: AnyRef) => ({
        ...Object.fromEntries(table.columns.map((c) => [c.field, t.field({ type: shared.OrderBy })])),
        _count: t.field({ type: shared.OrderBy }),
      }),
    });

    const Edge = b.objectRef(`${n}_edge`).implement({
      fields: (t: AnyRef) => ({
        cursor: t.exposeString('cursor'),
        node: t.field({ type: r.row, resolve: (edge: { node: Row }) => edge.node }),
      }),
    });
    r.connection.implement({
      fields: (t: AnyRef) => ({
        edges: t.field({ type: [Edge], resolve: (c: Connection) => c.edges }),
        pageInfo: t.field({ type: shared.PageInfo, resolve: (c: Connection) => c.pageInfo }),
        coverage: t.field({ type: shared.Coverage, resolve: (c: Connection) => c.coverage ?? single }),
      }),
    });

    const writeFields = (t: AnyRef, columns: readonly ColumnModel[], scalar: (c: ColumnModel) => ScalarName) =>
      Object.fromEntries(columns.map((c) => [c.field, t.field({ type: scalar(c) })]));
    r.insertInput.implement({ description: `A row to insert into ${n}.`, fields: (t: AnyRef) => writeFields(t, writable, (c) => scalarOf[c.kind]) });
    r.setInput.implement({ description: `Columns to set on ${n} rows.`, fields: (t: AnyRef) => writeFields(t, writable, (c) => scalarOf[c.kind]) });
    r.incInput?.implement({ description: `Amounts to add to numeric columns of ${n}.`, fields: (t: AnyRef) => writeFields(t, summable, (c) => scalarOf[c.kind]) });
    r.pkColumns.implement({
      fields: (t: AnyRef) => Object.fromEntries(table.key.map((c) => [c.field, t.field({ type: scalarOf[c.kind], required: true })])),
    });
    if (r.onConflict) {
      const Constraint = b.enumType(`${n}_constraint`, {
        description: `Unique constraints of ${n} usable as an upsert target.`,
        values: Object.fromEntries(table.constraints.map((c) => [c.name, { value: c.name, description: `(${c.columns.join(', ')})` }])),
      });
      const UpdateColumn = b.enumType(`${n}_update_column`, { values: Object.fromEntries(writable.map((c) => [c.field, { value: c.field }])) });
      r.onConflict.implement({
        description: 'On a conflict with the constraint: update these columns from the proposed row (where the filter holds), or do nothing when the list is empty.',
        fields: (t: AnyRef) => ({
          constraint: t.field({ type: Constraint, required: true }),
          update_columns: t.field({ type: [UpdateColumn], required: true, defaultValue: [] }),
          where: t.field({ type: r.boolExp }),
        }),
      });
    }
    r.mutationResponse.implement({
      fields: (t: AnyRef) => ({
        affected_rows: t.exposeInt('affected_rows'),
        returning: t.field({ type: [r.row], resolve: (result: MutationResult) => result.returning }),
      }),
    });

    // Inside Instance: the table read from this one instance.
    b.objectFields(Instance, (t: AnyRef) => ({
      [n]: t.field({
        type: [r.row],
        description: `Rows of ${table.sql}.`,
        args: listArgs(t, r),
        resolve: (instance: InstanceRecord, args: Record<string, unknown>, ctx: SchemaTypes['Context']) => ctx.data.list(instance.id, table, args),
      }),
      [`${n}_by_pk`]: t.field({
        type: r.row,
        nullable: true,
        args: keyArgs(t, table),
        resolve: (instance: InstanceRecord, args: Record<string, unknown>, ctx: SchemaTypes['Context']) => ctx.data.byPk(instance.id, table, argsToKey(table, args)),
      }),
      [`${n}_aggregate`]: t.field({
        type: r.aggregate,
        args: { where: t.arg({ type: r.boolExp }) },
        resolve: (instance: InstanceRecord, args: { where?: Record<string, unknown> | null }, ctx: SchemaTypes['Context'], info: GraphQLResolveInfo) =>
          ctx.data.aggregate(instance.id, table, args.where, aggregateNeeds(info)),
      }),
      [`${n}_groups`]: t.field({
        type: [r.group],
        args: groupsArgs(t, r),
        resolve: (instance: InstanceRecord, args: any, ctx: SchemaTypes['Context']) => ctx.data.groups(instance.id, table, args),
      }),
      [`${n}_connection`]: t.field({
        type: r.connection,
        description: 'Relay-style pages: stable opaque cursors, every row exactly once.',
        args: connectionArgs(t, r),
        resolve: (instance: InstanceRecord, args: any, ctx: SchemaTypes['Context']) => ctx.data.connection(instance.id, table, args),
      }),
    }));

    // Root mutations: each in one transaction of one instance.
    const instanceArg = (t: AnyRef) => ({ instance_id: t.arg.id({ required: true }) });
    b.mutationFields((t: AnyRef) => {
      const updateArgs = { _set: t.arg({ type: r.setInput }), ...(r.incInput ? { _inc: t.arg({ type: r.incInput }) } : {}) };
      return {
        [`insert_${n}`]: t.field({
          ...access('data-write'),
          type: r.mutationResponse,
          args: { ...instanceArg(t), objects: t.arg({ type: [r.insertInput], required: true }), ...(r.onConflict ? { on_conflict: t.arg({ type: r.onConflict }) } : {}) },
          resolve: (_root: unknown, args: any, ctx: SchemaTypes['Context']) => ctx.data.insert(String(args.instance_id), table, args.objects, args.on_conflict),
        }),
        [`update_${n}`]: t.field({
          ...access('data-write'),
          type: r.mutationResponse,
          args: { ...instanceArg(t), where: t.arg({ type: r.boolExp, required: true }), ...updateArgs },
          resolve: (_root: unknown, args: any, ctx: SchemaTypes['Context']) => ctx.data.update(String(args.instance_id), table, args.where, args._set, args._inc),
        }),
        [`delete_${n}`]: t.field({
          ...access('data-write'),
          type: r.mutationResponse,
          args: { ...instanceArg(t), where: t.arg({ type: r.boolExp, required: true }) },
          resolve: (_root: unknown, args: any, ctx: SchemaTypes['Context']) => ctx.data.delete(String(args.instance_id), table, args.where),
        }),
        [`update_${n}_by_pk`]: t.field({
          ...access('data-write'),
          type: r.row,
          nullable: true,
          args: { ...instanceArg(t), pk_columns: t.arg({ type: r.pkColumns, required: true }), ...updateArgs },
          resolve: async (_root: unknown, args: any, ctx: SchemaTypes['Context']) =>
            (await ctx.data.update(String(args.instance_id), table, null, args._set, args._inc, args.pk_columns)).returning[0] ?? null,
        }),
        [`delete_${n}_by_pk`]: t.field({
          ...access('data-write'),
          type: r.row,
          nullable: true,
          args: { ...instanceArg(t), ...keyArgs(t, table) },
          resolve: async (_root: unknown, args: any, ctx: SchemaTypes['Context']) =>
            (await ctx.data.delete(String(args.instance_id), table, null, argsToKey(table, args))).returning[0] ?? null,
        }),
      };
    });
  }
  return refs;
}
