import { parseArgs } from 'node:util';
import { createApiKey } from '../auth/index.js';
import { roles, type Role } from '../config/index.js';
import { ClientError } from './client.js';

export const keysHelp = `Usage: fleetql keys create --id <name> --role admin|service|tenant [--instances a,b] [--labels org=acme,plan=pro]

Makes a new random API key. Prints the key once (give it to the client; fleetql never stores it)
and, on the next line, the JSON entry holding only its SHA-256 hash, to add to the array in
FLEETQL_API_KEYS (or the file it names). A tenant key names its instances by id and/or labels.
`;

function list(raw: string | undefined): string[] | undefined {
  return raw === undefined ? undefined : raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export function keysCommand(argv: string[]): number {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({ args: rest, options: { id: { type: 'string' }, role: { type: 'string' }, instances: { type: 'string' }, labels: { type: 'string' }, help: { type: 'boolean' } } });
  if (sub !== 'create' || values.help) {
    process.stdout.write(keysHelp);
    return sub === 'create' || sub === '--help' ? 0 : 2;
  }
  if (values.id === undefined || values.id === '') throw new ClientError('--id <name> is required (a name for logs, e.g. acme-frontend)', 'USAGE');
  if (!roles.includes(values.role as Role)) throw new ClientError('--role must be admin, service or tenant', 'USAGE');
  const instances = list(values.instances);
  let labels: Record<string, string> | undefined;
  for (const pair of list(values.labels) ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new ClientError('--labels takes key=value pairs separated by commas', 'USAGE');
    (labels ??= {})[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (values.role === 'tenant' && instances === undefined && labels === undefined) throw new ClientError('a tenant key needs --instances and/or --labels', 'USAGE');
  const { key, entry } = createApiKey({ id: values.id, role: values.role as Role, ...(instances ? { instances } : {}), ...(labels ? { labels } : {}) });
  process.stdout.write(`${key}\n${JSON.stringify(entry)}\n`);
  return 0;
}
