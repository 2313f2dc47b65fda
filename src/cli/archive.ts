import { SingleBar } from 'cli-progress';
import { parseArgs } from 'node:util';
import { ClientError, connect, connectionHelp, connectionOptions, type GraphQLClient } from './client.js';

export const archiveHelp = `Usage:
  fleetql archive --where <json> [--retire] [--concurrency n] [--url url] [--api-key key]
      archives every instance the instances_bool_exp selects (retire: then removes their files)
  fleetql restore --archive <archive-id> [--as <instance-id>] [--url url] [--api-key key]
  fleetql restore --where <json> [--concurrency n] [--url url] [--api-key key]
      restores, for every ARCHIVED or DESTROYED instance selected, its newest archive

Shows a progress bar; exits 1 if any instance failed (each failure is listed).
${connectionHelp}
`;

interface Failure {
  id: string;
  code: string;
  message: string;
}

function parseWhere(raw: string | undefined): unknown {
  if (raw === undefined) throw new ClientError('--where <instances_bool_exp as JSON> is required', 'USAGE');
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new ClientError('--where takes an instances_bool_exp as JSON, e.g. \'{"labels": {"_contains": {"org": "acme"}}}\'', 'USAGE');
  }
}

async function selectIds(client: GraphQLClient, where: unknown): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await client.request<{ instances: Array<{ id: string }> }>(
      `query($where: instances_bool_exp, $offset: Int) { instances(where: $where, order_by: [{id: asc}], limit: 1000, offset: $offset) { id } }`,
      { where, offset },
    );
    ids.push(...page.instances.map((i) => i.id));
    if (page.instances.length < 1000) return ids;
  }
}

/** Runs `task` for every id, `concurrency` at a time, with a progress bar on stderr. */
async function forEachWithBar(label: string, ids: readonly string[], concurrency: number, task: (id: string) => Promise<void>): Promise<Failure[]> {
  const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} · {failed} failed · ETA {eta_formatted}`, barCompleteChar: '█', barIncompleteChar: '░', hideCursor: true, noTTYOutput: true, notTTYSchedule: 1000, stream: process.stderr });
  const failures: Failure[] = [];
  bar.start(ids.length, 0, { failed: 0 });
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, ids.length)) }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        try {
          await task(id);
        } catch (error) {
          failures.push({ id, code: error instanceof ClientError ? error.code : 'ERROR', message: error instanceof Error ? error.message : String(error) });
        }
        bar.increment(1, { failed: failures.length });
      }
    }),
  );
  bar.stop();
  return failures;
}

function report(verb: string, total: number, failures: readonly Failure[]): number {
  process.stdout.write(`${verb} ${total - failures.length} of ${total} instance(s)${failures.length ? `, ${failures.length} failed:` : ''}\n`);
  for (const failure of failures) process.stdout.write(`  ✗ ${failure.id}: ${failure.code} ${failure.message}\n`);
  return failures.length === 0 ? 0 : 1;
}

function concurrencyOf(raw: string | undefined): number {
  if (raw === undefined) return 4;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new ClientError('--concurrency takes a whole number ≥ 1', 'USAGE');
  return Number(raw);
}

export async function archiveCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...connectionOptions, where: { type: 'string' }, retire: { type: 'boolean' }, concurrency: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(archiveHelp);
    return 0;
  }
  const client = connect(values, env);
  const ids = await selectIds(client, { _and: [parseWhere(values.where), { state: { _eq: 'ACTIVE' } }] });
  const retire = values.retire === true;
  const failures = await forEachWithBar(retire ? 'retire' : 'archive', ids, concurrencyOf(values.concurrency), async (id) => {
    await client.request(`mutation($id: ID!, $retire: Boolean!) { archive_instance(id: $id, retire: $retire) { id } }`, { id, retire });
  });
  return report(retire ? 'retired' : 'archived', ids.length, failures);
}

export async function restoreCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...connectionOptions, where: { type: 'string' }, archive: { type: 'string' }, as: { type: 'string' }, concurrency: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(archiveHelp);
    return 0;
  }
  const client = connect(values, env);
  if (values.archive !== undefined) {
    const restored = await client.request<{ restore_instance: { id: string; state: string; schema_version: number } }>(
      `mutation($archive: ID!, $as: ID) { restore_instance(archive_id: $archive, as_id: $as) { id state schema_version } }`,
      { archive: values.archive, as: values.as },
    );
    process.stdout.write(`restored ${restored.restore_instance.id} (${restored.restore_instance.state}, schema version ${restored.restore_instance.schema_version})\n`);
    return 0;
  }
  const ids = await selectIds(client, { _and: [parseWhere(values.where), { state: { _in: ['ARCHIVED', 'DESTROYED'] } }] });
  const failures = await forEachWithBar('restore', ids, concurrencyOf(values.concurrency), async (id) => {
    const { archives } = await client.request<{ archives: Array<{ id: string }> }>(`query($id: ID!) { archives(instance_id: $id, limit: 1) { id } }`, { id });
    if (archives[0] === undefined) throw new ClientError(`no archive of ${id}`, 'ARCHIVE_NOT_FOUND');
    await client.request(`mutation($archive: ID!) { restore_instance(archive_id: $archive) { id } }`, { archive: archives[0].id });
  });
  return report('restored', ids.length, failures);
}
