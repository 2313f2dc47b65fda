import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import type { MigrationSet } from '../migrations/index.js';
import { createBuilder } from './builder.js';
import { registerInstanceTypes } from './instance-types.js';
import { registerMigrationTypes } from './migration-types.js';

/** Builds the GraphQL schema for one migration set; done once per set, never per request. */
export function buildSchema(_migrations: MigrationSet): GraphQLSchema {
  const builder = createBuilder();
  registerInstanceTypes(builder);
  registerMigrationTypes(builder);
  return builder.toSchema();
}

/** The SDL committed as schema/schema.graphql: sorted, so it changes only when the schema does. */
export function printSchemaSdl(schema: GraphQLSchema): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
