export type { Context } from './builder.js';
export { buildSchema, printSchemaSdl } from './build-schema.js';
