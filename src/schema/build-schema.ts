import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { introspectVersions, type InstanceSchema, type MigrationSet } from '../migrations/index.js';
import { buildDataModel, type DataModel } from '../query/index.js';
import { registerArchiveTypes } from './archive-types.js';
import { createBuilder } from './builder.js';
import { registerFleetTypes } from './fleet-types.js';
import { registerInstanceTypes } from './instance-types.js';
import { registerMigrationTypes } from './migration-types.js';
import { registerRolloutTypes } from './rollout-types.js';
import { registerSharedTypes } from './shared-types.js';
import { registerTableTypes } from './table-types.js';

/** Builds the GraphQL schema for one migration set (its data model); done once per set, never per request. */
export function buildSchema(model: DataModel, versions: readonly InstanceSchema[]): GraphQLSchema {
  const builder = createBuilder();
  const shared = registerSharedTypes(builder);
  const { Instance, InstancesBoolExp } = registerInstanceTypes(builder, shared);
  registerMigrationTypes(builder);
  const refs = registerTableTypes(builder, shared, model, versions, Instance);
  registerFleetTypes(builder, model, refs, InstancesBoolExp);
  registerRolloutTypes(builder, InstancesBoolExp);
  registerArchiveTypes(builder, Instance);
  return builder.toSchema();
}

export interface BuiltSchema {
  schema: GraphQLSchema;
  model: DataModel;
}

/** Introspects the migrations at every version, models the head's tables and builds the schema. */
export function schemaForMigrations(migrations: MigrationSet): BuiltSchema {
  const versions = introspectVersions(migrations);
  const model = buildDataModel(versions);
  return { schema: buildSchema(model, versions), model };
}

/** The SDL committed as schema/schema.graphql: sorted, so it changes only when the schema does. */
export function printSchemaSdl(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
