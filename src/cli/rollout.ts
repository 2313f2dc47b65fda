import { SingleBar } from 'cli-progress';
import { parseArgs } from 'node:util';
import { ClientError, connect, connectionHelp, connectionOptions, jsonFlag, wholeNumberFlag, type GraphQLClient } from './client.js';

export const rolloutHelp = `Usage: fleetql rollout <command> [options]

${connectionHelp}

  start --target <version> [--where <json>] [--canary n] [--batch-size n]
        [--concurrency n] [--max-failures n] [--pause-after-canary] [--no-snapshots] [--watch]
  status <id> [--watch]
  pause <id> | resume <id> [--watch] | abort <id>

--watch shows a live progress bar (done, failed, rate, ETA) until the rollout stops;
it exits 0 when the rollout completes and 1 when it ends paused, failed or aborted.
`;

const fields = 'id state target_version pause_reason counts { total done failed skipped remaining } failures { instance_id code message }';

interface Rollout {
  id: string;
  state: string;
  target_version: number;
  pause_reason: string | null;
  counts: { total: number; done: number; failed: number; skipped: number; remaining: number };
  failures: Array<{ instance_id: string; code: string; message: string }>;
}

function summary(rollout: Rollout): string {
  const { total, done, failed, skipped, remaining } = rollout.counts;
  const lines = [
    `rollout ${rollout.id} → version ${rollout.target_version}: ${rollout.state}${rollout.pause_reason ? ` (${rollout.pause_reason})` : ''}`,
    `  ${done}/${total} done, ${failed} failed, ${skipped} skipped, ${remaining} remaining`,
  ];
  for (const failure of rollout.failures.slice(0, 10)) lines.push(`  ✗ ${failure.instance_id}: ${failure.code} ${failure.message}`);
  if (rollout.failures.length > 10) lines.push(`  … and ${rollout.failures.length - 10} more failures`);
  return `${lines.join('\n')}\n`;
}

/** Follows a rollout over the progress subscription with a bar; resolves with its last state. */
async function watch(client: GraphQLClient, id: string, out: NodeJS.WriteStream): Promise<Rollout> {
  const bar = new SingleBar(
    {
      format: 'rollout {id} [{bar}] {value}/{total} done · {failed} failed · {rate}/s · ETA {eta_formatted} · {state}',
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 1000,
      stream: out,
    },
  );
  const startedAt = performance.now();
  let firstDone: number | undefined;
  let last: Rollout | undefined;
  for await (const data of client.subscribe<{ rollout_progress: Rollout }>(`subscription($id: ID!) { rollout_progress(id: $id) { ${fields} } }`, { id })) {
    const rollout = data.rollout_progress;
    const { total, done, failed } = rollout.counts;
    firstDone ??= done;
    const seconds = (performance.now() - startedAt) / 1000;
    const rate = seconds > 0 ? ((done + failed - firstDone) / seconds).toFixed(1) : '0.0';
    if (last === undefined) bar.start(total, done, { id, failed, rate, state: rollout.state });
    else bar.update(done, { failed, rate, state: rollout.state });
    last = rollout;
    if (rollout.state !== 'RUNNING' && rollout.state !== 'PENDING') break;
  }
  bar.stop();
  if (last === undefined) throw new ClientError(`no progress received for rollout ${id}`, 'SUBSCRIPTION_FAILED');
  return last;
}

export async function rolloutCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...connectionOptions,
      target: { type: 'string' },
      where: { type: 'string' },
      canary: { type: 'string' },
      'batch-size': { type: 'string' },
      concurrency: { type: 'string' },
      'max-failures': { type: 'string' },
      'pause-after-canary': { type: 'boolean' },
      'no-snapshots': { type: 'boolean' },
      watch: { type: 'boolean' },
    },
  });
  const client = connect(values, env);
  const idArg = () => {
    const id = positionals[0];
    if (id === undefined) throw new ClientError(`fleetql rollout ${command} needs a rollout id`, 'USAGE');
    return id;
  };
  let rollout: Rollout;
  switch (command) {
    case 'start': {
      const target = wholeNumberFlag(values.target, '--target');
      if (target === undefined) throw new ClientError('fleetql rollout start needs --target <version>', 'USAGE');
      const strategy = Object.fromEntries(
        Object.entries({
          canary: wholeNumberFlag(values.canary, '--canary'),
          batch_size: wholeNumberFlag(values['batch-size'], '--batch-size'),
          concurrency: wholeNumberFlag(values.concurrency, '--concurrency'),
          max_failures: wholeNumberFlag(values['max-failures'], '--max-failures'),
          pause_after_canary: values['pause-after-canary'],
          ...(values['no-snapshots'] === true ? { snapshots: false } : {}),
        }).filter(([, v]) => v !== undefined),
      );
      const where = values.where === undefined ? undefined : jsonFlag(values.where, '--where', 'an instances_bool_exp as JSON, e.g. \'{"labels": {"_contains": {"org": "acme"}}}\'');
      rollout = (await client.request<{ start_rollout: Rollout }>(`mutation($target: Int!, $where: instances_bool_exp, $strategy: rollout_strategy_input) { start_rollout(target_version: $target, where: $where, strategy: $strategy) { ${fields} } }`, { target, where, strategy })).start_rollout;
      break;
    }
    case 'status':
      rollout = (await client.request<{ rollout: Rollout }>(`query($id: ID!) { rollout(id: $id) { ${fields} } }`, { id: idArg() })).rollout;
      break;
    case 'pause':
    case 'resume':
    case 'abort':
      rollout = (await client.request<Record<string, Rollout>>(`mutation($id: ID!) { result: ${command}_rollout(id: $id) { ${fields} } }`, { id: idArg() }))['result']!;
      break;
    default:
      process.stdout.write(rolloutHelp);
      return command === undefined || command === '--help' ? 0 : 2;
  }
  if (values.watch === true) rollout = await watch(client, rollout.id, process.stderr);
  process.stdout.write(summary(rollout));
  return values.watch === true && rollout.state !== 'COMPLETED' ? 1 : 0;
}
