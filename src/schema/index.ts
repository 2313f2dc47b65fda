export type { Context } from './builder.js';
export { buildSchema, printSchemaSdl, schemaForMigrations } from './build-schema.js';
export type { BuiltSchema } from './build-schema.js';
