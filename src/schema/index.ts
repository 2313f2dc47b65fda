export type { Context } from './builder.js';
export { buildSchema, printSchemaSdl, schemaForMigrations } from './build-schema.js';
export type { BuiltSchema } from './build-schema.js';
export { access, fieldAccess } from './field-access.js';
export type { FieldAccess } from './field-access.js';
