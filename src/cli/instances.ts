import { parseArgs } from 'node:util';
import { ClientError, connect, connectionHelp, connectionOptions, jsonFlag, wholeNumberFlag, type GraphQLClient } from './client.js';

export const instancesHelp = `Usage:
  fleetql instances list [--where <json>] [--limit n] [--offset n] [--json]
  fleetql instances show <id> [--json]
  fleetql instances create <id> [--labels <json>]
  fleetql instances labels <id> <json>            replaces the instance's labels
  fleetql instances destroy <id> [--no-archive]   archives first unless --no-archive

${connectionHelp}
--where takes an instances_bool_exp as JSON, e.g. '{"labels": {"_contains": {"org": "acme"}}}'.
`;

interface InstanceRow {
  id: string;
  state: string;
  schema_version: number;
  labels: Record<string, string>;
  size_bytes: number;
  created_at: string;
}

const instanceFields = 'id state schema_version labels size_bytes created_at';

function usage(message: string): ClientError {
  return new ClientError(`${message} (fleetql instances --help)`, 'USAGE');
}

/** Plain columns for a terminal: every column as wide as its widest cell. */
function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

const labelsText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');

function print(rows: readonly InstanceRow[], asJson: boolean): void {
  if (asJson) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  process.stdout.write(table(['ID', 'STATE', 'VERSION', 'SIZE', 'LABELS'], rows.map((r) => [r.id, r.state, String(r.schema_version), String(r.size_bytes), labelsText(r.labels)])));
}

async function list(client: GraphQLClient, values: { where?: string | undefined; limit?: string | undefined; offset?: string | undefined; json?: boolean | undefined }): Promise<number> {
  const { instances } = await client.request<{ instances: InstanceRow[] }>(
    `query($where: instances_bool_exp, $limit: Int, $offset: Int) { instances(where: $where, order_by: [{id: asc}], limit: $limit, offset: $offset) { ${instanceFields} } }`,
    { where: values.where === undefined ? undefined : jsonFlag(values.where, '--where'), limit: wholeNumberFlag(values.limit, '--limit') ?? 100, offset: wholeNumberFlag(values.offset, '--offset') },
  );
  print(instances, values.json === true);
  return 0;
}

export async function instancesCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...connectionOptions,
      where: { type: 'string' },
      limit: { type: 'string' },
      offset: { type: 'string' },
      labels: { type: 'string' },
      json: { type: 'boolean' },
      'no-archive': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, id, extra] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(instancesHelp);
    return values.help ? 0 : 2;
  }
  const client = connect(values, env);
  if (sub === 'list') return list(client, values);
  if (id === undefined) throw usage(`fleetql instances ${sub} needs an instance id`);
  switch (sub) {
    case 'show': {
      const { instance } = await client.request<{ instance: (InstanceRow & { migrations_applied: unknown[] }) | null }>(
        `query($id: ID!) { instance(id: $id) { ${instanceFields} updated_at migrations_applied { version name applied_at } } }`,
        { id },
      );
      if (instance === null) throw new ClientError(`instance "${id}" not found`, 'INSTANCE_NOT_FOUND');
      process.stdout.write(`${JSON.stringify(instance, null, 2)}\n`);
      return 0;
    }
    case 'create': {
      const labels = values.labels === undefined ? undefined : jsonFlag(values.labels, '--labels');
      const { create_instance } = await client.request<{ create_instance: InstanceRow }>(`mutation($id: ID!, $labels: JSON) { create_instance(id: $id, labels: $labels) { ${instanceFields} } }`, { id, labels });
      print([create_instance], values.json === true);
      return 0;
    }
    case 'labels': {
      if (extra === undefined) throw usage('fleetql instances labels <id> <json> needs the labels');
      const { set_instance_labels } = await client.request<{ set_instance_labels: InstanceRow }>(
        `mutation($id: ID!, $labels: JSON!) { set_instance_labels(id: $id, labels: $labels) { ${instanceFields} } }`,
        { id, labels: jsonFlag(extra, 'labels') },
      );
      print([set_instance_labels], values.json === true);
      return 0;
    }
    case 'destroy': {
      const archive = values['no-archive'] !== true;
      const { destroy_instance } = await client.request<{ destroy_instance: InstanceRow }>(`mutation($id: ID!, $archive: Boolean!) { destroy_instance(id: $id, archive: $archive) { ${instanceFields} } }`, { id, archive });
      process.stdout.write(`destroyed ${destroy_instance.id}${archive ? ' (archived first)' : ''}\n`);
      return 0;
    }
    default:
      throw usage(`unknown subcommand "${sub}"`);
  }
}
