#!/usr/bin/env node
import { FleetqlError } from '../errors.js';
import { archiveCommand, restoreCommand } from './archive.js';
import { ClientError } from './client.js';
import { instancesCommand } from './instances.js';
import { keysCommand } from './keys.js';
import { rolloutCommand } from './rollout.js';
import { schemaPrint, schemaPrintHelp } from './schema-print.js';
import { serve, serveHelp } from './serve.js';

const help = `Usage: fleetql <command>

Commands:
  serve          start the GraphQL gateway (fleetql serve --help)
  schema print   write schema/schema.graphql from the migrations
  instances …    list, show, create, relabel, destroy instances (fleetql instances --help)
  rollout …      start, watch, pause, resume, abort migration rollouts (fleetql rollout --help)
  archive …      archive (or retire) every instance a filter selects (fleetql archive --help)
  restore …      restore one archive, or the instances a filter selects (fleetql restore --help)
  keys create    make an API key and the hashed entry for FLEETQL_API_KEYS (fleetql keys --help)
`;

async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case 'serve':
      if (wantsHelp) {
        process.stdout.write(serveHelp);
        return 0;
      }
      await serve(rest, process.env);
      return undefined;
    case 'instances':
      return instancesCommand(rest, process.env);
    case 'rollout':
      return rolloutCommand(rest, process.env);
    case 'archive':
      return archiveCommand(rest, process.env);
    case 'restore':
      return restoreCommand(rest, process.env);
    case 'keys':
      return keysCommand(rest);
    case 'schema': {
      const [sub, ...args] = rest;
      if (sub !== 'print' || wantsHelp) {
        process.stdout.write(schemaPrintHelp);
        return sub === 'print' ? 0 : 2;
      }
      return schemaPrint(args, process.env);
    }
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(help);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`fleetql: unknown command "${command}"\n\n${help}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (error: unknown) => {
    const message =
      error instanceof FleetqlError || error instanceof ClientError
        ? `${error.code}: ${error.message}`
        : error instanceof Error
          ? (error.stack ?? error.message)
          : String(error);
    process.stderr.write(`fleetql: ${message}\n`);
    process.exit(1);
  },
);
