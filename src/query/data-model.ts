import { FleetqlError } from '../errors.js';
import type { ColumnKind, InstanceSchema, TableInfo } from '../migrations/index.js';
import { graphqlName, NameRegistry } from './names.js';

export interface ColumnModel {
  /** The SQL name; `rowid` for the synthetic key of a table without a primary key. */
  readonly sql: string;
  /** The GraphQL field name. */
  readonly field: string;
  readonly kind: ColumnKind;
  readonly notNull: boolean;
  readonly generated: boolean;
  /** Leaving it out of an insert is fine: it has a default, is generated, nullable, or a rowid alias. */
  readonly optionalOnInsert: boolean;
}

export interface RelationshipModel {
  readonly field: string;
  readonly kind: 'object' | 'array';
  readonly target: string;
  /** Local columns (SQL names) matched, in order, to `targetColumns`. */
  readonly columns: readonly string[];
  readonly targetColumns: readonly string[];
}

export interface ConstraintModel {
  /** Enum value in `<t>_constraint`. */
  readonly name: string;
  readonly columns: readonly string[];
}

export interface TableModel {
  readonly sql: string;
  /** Stem of every GraphQL name of this table: type `t`, `t_bool_exp`, field `t_aggregate`… */
  readonly name: string;
  readonly columns: readonly ColumnModel[];
  /** The key columns: the primary key, or the synthetic `rowid` column (field `_rowid`). */
  readonly key: readonly ColumnModel[];
  readonly rowidKey: boolean;
  readonly relationships: readonly RelationshipModel[];
  readonly constraints: readonly ConstraintModel[];
  column(sqlName: string): ColumnModel | undefined;
  byField(field: string): ColumnModel | undefined;
}

/** The data API's model: tables at the head version, plus the schema at every version for mixed fleets. */
export interface DataModel {
  readonly tables: readonly TableModel[];
  readonly head: number;
  table(sqlName: string): TableModel | undefined;
  /** The instance schema at `version` (tables and columns an instance at that version has). */
  at(version: number): InstanceSchema;
}

/** Type names fleetql's own API uses; a table never takes one. */
const reservedTypeNames = [
  'Query', 'Mutation', 'Subscription', 'Instance', 'AppliedMigration', 'Migration', 'instance_state', 'order_by',
  'instances_bool_exp', 'instances_order_by', 'instances_aggregate', 'instances_aggregate_fields', 'labels_comparison_exp',
  'PageInfo', 'coverage', 'Fleet', 'BigInt', 'JSON', 'DateTime', 'Base64', 'Int', 'Float', 'String', 'Boolean', 'ID',
];
const reservedInstanceFields = ['id', 'labels', 'state', 'schema_version', 'size_bytes', 'created_at', 'updated_at', 'migrations_applied'];
const typeSuffixes = [
  '', '_bool_exp', '_order_by', '_select_column', '_aggregate', '_aggregate_fields', '_sum_fields', '_avg_fields', '_min_fields',
  '_max_fields', '_groups_order_by', '_group', '_group_key', '_connection', '_edge', '_insert_input', '_set_input', '_inc_input',
  '_pk_columns_input', '_on_conflict', '_constraint', '_update_column', '_mutation_response',
];
const instanceFieldSuffixes = ['', '_by_pk', '_aggregate', '_groups', '_connection'];
const enumReserved = new Set(['true', 'false', 'null']);

function claimStem(table: TableInfo, types: NameRegistry, instanceFields: NameRegistry): string {
  const base = graphqlName(table.name);
  for (let n = 1; n < 100; n++) {
    const stem = n === 1 ? base : `${base}_${n}`;
    const typeNames = typeSuffixes.map((suffix) => stem + suffix);
    const fieldNames = instanceFieldSuffixes.map((suffix) => stem + suffix);
    if (!typeNames.some((name) => types.has(name)) && !fieldNames.some((name) => instanceFields.has(name))) {
      types.tryClaimAll(typeNames);
      instanceFields.tryClaimAll(fieldNames);
      return stem;
    }
  }
  throw new FleetqlError('MIGRATION_INVALID', `cannot find GraphQL names for table "${table.name}"`);
}

function columnField(fields: NameRegistry, sqlName: string): string {
  const name = graphqlName(sqlName);
  return fields.claim(enumReserved.has(name) ? `${name}_` : name);
}

interface Draft {
  info: TableInfo;
  name: string;
  fields: NameRegistry;
  columns: ColumnModel[];
  key: ColumnModel[];
  relationships: RelationshipModel[];
  constraints: ConstraintModel[];
}

/** Builds the data model from the schema at every version (index = version); the last is the head. */
export function buildDataModel(versions: readonly InstanceSchema[]): DataModel {
  const headSchema = versions[versions.length - 1];
  if (headSchema === undefined) throw new Error('no schema versions');
  const types = new NameRegistry(reservedTypeNames);
  const instanceFields = new NameRegistry(reservedInstanceFields);
  const drafts = new Map<string, Draft>();

  for (const info of [...headSchema.tables.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const name = claimStem(info, types, instanceFields);
    const fields = new NameRegistry(['_instance_id', '_rowid']);
    const columns: ColumnModel[] = info.columns.map((column) => ({
      sql: column.name,
      field: columnField(fields, column.name),
      kind: column.kind,
      notNull: column.notNull,
      generated: column.generated,
      optionalOnInsert: column.hasDefault || column.generated || !column.notNull || column.autoIncrement,
    }));
    const key = info.rowidKey
      ? [{ sql: 'rowid', field: '_rowid', kind: 'integer' as const, notNull: true, generated: true, optionalOnInsert: true }]
      : info.primaryKey.map((pk) => columns.find((c) => c.sql === pk)!);
    const constraintNames = new NameRegistry();
    const constraints = info.uniqueConstraints.map((constraint) => ({
      name: constraintNames.claim(constraint.name === `${info.name}_pkey` ? `${name}_pkey` : graphqlName(constraint.name)),
      columns: constraint.columns,
    }));
    drafts.set(info.name, { info, name, fields, columns, key, relationships: [], constraints });
  }

  // Relationships, once every table's column names are settled.
  for (const child of drafts.values()) {
    for (const fk of child.info.foreignKeys) {
      const parent = drafts.get(fk.table);
      if (parent === undefined || fk.references.length !== fk.columns.length) continue;
      const [only] = fk.columns;
      const byColumns = `_by_${fk.columns.map((c) => graphqlName(c)).join('_')}`;
      const objectBase = fk.columns.length === 1 && only !== undefined && /.._id$/.test(only) ? graphqlName(only.slice(0, -3)) : parent.name;
      const objectName = child.fields.has(objectBase) ? child.fields.claim(`${parent.name}${byColumns}`) : child.fields.claim(objectBase);
      child.relationships.push({ field: objectName, kind: 'object', target: parent.info.name, columns: fk.columns, targetColumns: fk.references });
      const siblings = child.info.foreignKeys.filter((other) => other.table === fk.table).length;
      const arrayBase = siblings === 1 && child !== parent ? child.name : `${child.name}${byColumns}`;
      const arrayName = parent.fields.claim(arrayBase);
      parent.relationships.push({ field: arrayName, kind: 'array', target: child.info.name, columns: fk.references, targetColumns: fk.columns });
    }
  }

  const tables = [...drafts.values()].map((draft): TableModel => {
    const bySql = new Map([...draft.columns, ...draft.key].map((c) => [c.sql, c]));
    const byField = new Map([...draft.columns, ...draft.key].map((c) => [c.field, c]));
    return Object.freeze({
      sql: draft.info.name,
      name: draft.name,
      columns: draft.columns,
      key: draft.key,
      rowidKey: draft.info.rowidKey,
      relationships: draft.relationships,
      constraints: draft.constraints,
      column: (sqlName: string) => bySql.get(sqlName),
      byField: (field: string) => byField.get(field),
    });
  });
  const bySqlName = new Map(tables.map((t) => [t.sql, t]));
  return Object.freeze({
    tables,
    head: headSchema.version,
    table: (sqlName: string) => bySqlName.get(sqlName),
    at: (version: number) => {
      const schema = versions[version];
      if (schema === undefined) throw new FleetqlError('SCHEMA_VERSION_BEHIND', `no schema is known for version ${version}`);
      return schema;
    },
  });
}
