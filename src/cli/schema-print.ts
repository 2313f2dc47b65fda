import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaults } from '../config/index.js';
import { loadMigrations } from '../migrations/index.js';
import { printSchemaSdl, schemaForMigrations } from '../schema/index.js';

export const schemaPrintHelp = `Usage: fleetql schema print [--migrations <dir>] [--out <file>] [--check]

Writes the GraphQL SDL that the migrations produce (default schema/schema.graphql).
  --check   write nothing; exit 1 when the file differs from the schema the code builds
`;

/** The SDL fleetql serves for the migrations in `migrationsDir`. */
export function schemaSdlFor(migrationsDir: string): string {
  return printSchemaSdl(schemaForMigrations(loadMigrations(migrationsDir)).schema);
}

export function schemaPrint(argv: string[], env: NodeJS.ProcessEnv): number {
  const { values } = parseArgs({
    args: argv,
    options: { migrations: { type: 'string' }, out: { type: 'string' }, check: { type: 'boolean' } },
    strict: true,
  });
  const migrationsDir = values.migrations ?? (env['FLEETQL_MIGRATIONS'] || defaults.migrationsDir);
  const out = path.resolve(values.out ?? 'schema/schema.graphql');
  const sdl = schemaSdlFor(migrationsDir);
  if (values.check === true) {
    const current = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    if (current !== sdl) {
      process.stderr.write(`${out} is out of date: run "fleetql schema print"\n`);
      return 1;
    }
    return 0;
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, sdl);
  process.stdout.write(`wrote ${out}\n`);
  return 0;
}
