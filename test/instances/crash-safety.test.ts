/**
 * "Create and destroy are journaled in the catalog: kill -9 at any point, restart, and the instance
 * is either fully there or fully gone, never a catalog row without a file or a file without a row."
 *
 * For every crash point the real CLI (`fleetql serve`) is started with FLEETQL_CRASH_AT=<point>, the
 * mutation kills it with SIGKILL mid-operation, and the invariant is then checked after a restart
 * through the GraphQL API, on disk, and in the catalog file itself.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'libsql';
import type { CrashPoint } from '../../src/instances/crash-points.js';
import { demoMigrations, filesUnder, relativeFileOf, repoRoot, spawnServer, tempDir, type GraphQLResponse, type SpawnedServer } from '../helpers/servers.js';

const victim = 'victim';
const bystander = 'bystander';
const victimLabels = { org: 'acme' };
const bystanderLabels = { org: 'acme', role: 'bystander' };
const allStates = ['ACTIVE', 'ARCHIVED', 'CREATING', 'DESTROYED', 'DESTROYING', 'QUARANTINED'] as const;

/** Migration versions from the migration files themselves (an oracle independent of the server). */
const migrationVersions = fs
  .readdirSync(demoMigrations)
  .map((name) => /^(\d+)_.+\.sql$/.exec(name))
  .filter((match): match is RegExpExecArray => match !== null)
  .map((match) => Number(match[1]))
  .sort((a, b) => a - b);
const head = migrationVersions.at(-1)!;


interface Case {
  operation: 'create' | 'destroy';
  /** Where the instance must be after the restart. */
  outcome: 'there' | 'gone';
  /** What the restart's recovery must report for the victim (undefined: nothing was pending). */
  recovery: 'createsRolledBack' | 'destroysCompleted' | undefined;
  /** The victim's files (relative to instances/) right after the crash: proves where the crash hit. */
  filesAfterCrash: RegExp[];
}

const live = relativeFileOf(victim);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Keyed by CrashPoint so the compiler rejects a missing or unknown point. */
const cases: Record<CrashPoint, Case> = {
  'create:journaled': { operation: 'create', outcome: 'gone', recovery: 'createsRolledBack', filesAfterCrash: [] },
  'create:file-built': { operation: 'create', outcome: 'gone', recovery: 'createsRolledBack', filesAfterCrash: [new RegExp(`^${esc(live)}\\.creating$`)] },
  'create:file-placed': { operation: 'create', outcome: 'gone', recovery: 'createsRolledBack', filesAfterCrash: [new RegExp(`^${esc(live)}$`)] },
  'create:committed': { operation: 'create', outcome: 'there', recovery: undefined, filesAfterCrash: [new RegExp(`^${esc(live)}$`)] },
  'destroy:journaled': { operation: 'destroy', outcome: 'gone', recovery: 'destroysCompleted', filesAfterCrash: [new RegExp(`^${esc(live)}$`)] },
  'destroy:file-moved': { operation: 'destroy', outcome: 'gone', recovery: 'destroysCompleted', filesAfterCrash: [new RegExp(`^${esc(live)}\\.destroying-\\d+$`)] },
  'destroy:file-removed': { operation: 'destroy', outcome: 'gone', recovery: 'destroysCompleted', filesAfterCrash: [] },
  'destroy:committed': { operation: 'destroy', outcome: 'gone', recovery: undefined, filesAfterCrash: [] },
};

function assertOk<T>(response: GraphQLResponse<T>, what: string): T {
  assert.equal(response.errors, undefined, `${what}: unexpected errors ${JSON.stringify(response.errors)}`);
  assert.equal(response.status, 200, what);
  assert.ok(response.data, what);
  return response.data;
}

const cleanEnv = { FLEETQL_CRASH_AT: '' };

/** What tempDir and spawnServer need of a test context: somewhere to register cleanup. */
interface Cleanups {
  after(fn: () => unknown): void;
}

function start(t: Cleanups, dataDir: string, env: Record<string, string> = cleanEnv): Promise<SpawnedServer> {
  return spawnServer(t, { args: ['--no-demo', '--data', dataDir], env });
}

async function stop(server: SpawnedServer): Promise<void> {
  server.child.kill('SIGTERM');
  const exit = await server.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, `clean shutdown expected; stderr:\n${server.stderr()}`);
}

/** The "settled operations a previous run left unfinished" log lines of one run. */
function recoveryReports(server: SpawnedServer): Array<{ createsRolledBack: string[]; destroysCompleted: string[] }> {
  return server
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => typeof entry['msg'] === 'string' && (entry['msg'] as string).startsWith('settled operations'))
    .map((entry) => ({ createsRolledBack: entry['createsRolledBack'] as string[], destroysCompleted: entry['destroysCompleted'] as string[] }));
}

interface InstanceRow {
  id: string;
  state: string;
  schema_version: number;
  labels: Record<string, string>;
  created_at: string;
  updated_at: string;
  size_bytes: number | string;
}

const instanceFields = 'id state schema_version labels created_at updated_at size_bytes';

/** Every catalog row, destroyed ones included (naming a state in the filter includes them). */
async function allInstances(server: SpawnedServer): Promise<InstanceRow[]> {
  const data = assertOk(
    await server.gql<{ instances: InstanceRow[] }>(
      `query($states: [instance_state!]) { instances(where: { state: { _in: $states } }, order_by: [{ id: asc }], limit: 1000) { ${instanceFields} } }`,
      { states: allStates },
    ),
    'instances (all states)',
  );
  return data.instances;
}

async function defaultInstanceIds(server: SpawnedServer): Promise<string[]> {
  const data = assertOk(await server.gql<{ instances: Array<{ id: string }> }>(`{ instances(order_by: [{ id: asc }]) { id } }`), 'instances');
  return data.instances.map((i) => i.id);
}

async function createInstance(server: SpawnedServer, id: string, labels: Record<string, string>): Promise<InstanceRow> {
  const data = assertOk(
    await server.gql<{ create_instance: InstanceRow }>(`mutation($id: ID!, $labels: JSON) { create_instance(id: $id, labels: $labels) { ${instanceFields} } }`, { id, labels }),
    `create_instance(${id})`,
  );
  return data.create_instance;
}

function sha256OfFile(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * The instance is fully there: ACTIVE at the head version in the API, its file at the layout path,
 * and the file readable with every migration recorded inside it.
 */
async function assertFullyThere(server: SpawnedServer, dataDir: string, id: string, labels: Record<string, string>): Promise<void> {
  const response = await server.gql<{ instance: (InstanceRow & { migrations_applied: Array<{ version: number }> }) | null }>(
    `query($id: ID!) { instance(id: $id) { ${instanceFields} migrations_applied { version } } }`,
    { id },
  );
  const instance = assertOk(response, `instance(${id})`).instance;
  assert.ok(instance, `${id} must exist`);
  assert.equal(instance.state, 'ACTIVE', `${id} state`);
  assert.equal(instance.schema_version, head, `${id} schema_version`);
  assert.deepEqual(instance.labels, labels, `${id} labels`);
  assert.deepEqual(
    instance.migrations_applied.map((m) => m.version),
    migrationVersions,
    `${id} file must record every migration`,
  );
  const file = path.join(dataDir, 'instances', relativeFileOf(id));
  assert.ok(fs.statSync(file).isFile(), `${id} file at ${file}`);
  assert.ok(Number(instance.size_bytes) > 0, `${id} size_bytes`);
  assert.ok((await defaultInstanceIds(server)).includes(id), `${id} listed by instances`);
}

/**
 * The instance is fully gone: the API knows it as nothing but DESTROYED (or not at all) and no file
 * of it — live, `.creating`, `.destroying-*` or a sidecar — remains anywhere under instances/.
 */
async function assertFullyGone(server: SpawnedServer, dataDir: string, id: string, expectTombstone: boolean): Promise<void> {
  const rows = (await allInstances(server)).filter((row) => row.id === id);
  if (expectTombstone) {
    assert.deepEqual(rows.map((row) => row.state), ['DESTROYED'], `${id} must be a DESTROYED tombstone`);
    assert.equal(Number(rows[0]!.size_bytes), 0, `${id} size_bytes`);
  } else {
    assert.deepEqual(rows, [], `${id} must have no catalog row left`);
  }
  assert.ok(!(await defaultInstanceIds(server)).includes(id), `${id} must not be listed by instances`);

  const single = await server.gql<{ instance: InstanceRow | null }>(`query($id: ID!) { instance(id: $id) { id state } }`, { id });
  if (expectTombstone) {
    assert.equal(assertOk(single, `instance(${id})`).instance?.state, 'DESTROYED');
    const opened = await server.gql(`query($id: ID!) { instance(id: $id) { migrations_applied { version } } }`, { id });
    assert.equal(opened.errors?.[0]?.extensions?.['code'], 'INSTANCE_NOT_FOUND', `a destroyed instance's file is not opened: ${JSON.stringify(opened.errors)}`);
  } else {
    assert.equal(single.errors?.[0]?.extensions?.['code'], 'INSTANCE_NOT_FOUND', `instance(${id}): ${JSON.stringify(single)}`);
  }

  const leftovers = filesUnder(path.join(dataDir, 'instances')).filter((file) => path.basename(file).startsWith(`${id}.db`));
  assert.deepEqual(leftovers, [], `no file of ${id} may remain under instances/`);
}

/** After a clean stop: the catalog file has no pending operation and its live rows match the files exactly. */
function assertCatalogMatchesDisk(dataDir: string): void {
  const db = new Database(path.join(dataDir, 'catalog.db'), { readonly: true, fileMustExist: true });
  try {
    const pending = db.prepare(`SELECT kind, instance_id FROM operations WHERE status = 'pending'`).all();
    assert.deepEqual(pending, [], 'no operation may be left pending');
    const rows = db.prepare(`SELECT id, state FROM instances ORDER BY id`).all() as Array<{ id: string; state: string }>;
    assert.deepEqual(
      rows.filter((row) => row.state !== 'ACTIVE' && row.state !== 'DESTROYED'),
      [],
      'only ACTIVE rows and DESTROYED tombstones may remain',
    );
    const expectedFiles = rows
      .filter((row) => row.state === 'ACTIVE')
      .map((row) => relativeFileOf(row.id))
      .sort();
    assert.deepEqual(filesUnder(path.join(dataDir, 'instances')), expectedFiles, 'every ACTIVE row has its file, and every file has its ACTIVE row');
  } finally {
    db.close();
  }
}

/** What a restart must leave unchanged: the instance files (names and bytes) and every catalog row. */
async function snapshot(server: SpawnedServer, dataDir: string): Promise<unknown> {
  const instancesDir = path.join(dataDir, 'instances');
  const files = filesUnder(instancesDir).map((file) => [file, sha256OfFile(path.join(instancesDir, file))]);
  return { files, rows: await allInstances(server) };
}

describe('create and destroy survive kill -9 at every crash point', { concurrency: 3 }, () => {
  // Run 1 is the same for every point of an operation, so it runs once per operation and each
  // point starts from a copy of its data directory (a clean shutdown leaves catalog.db complete).
  const cleanups: Array<() => unknown> = [];
  const suite: Cleanups = { after: (fn) => cleanups.push(fn) };
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
  const templates = { create: '', destroy: '' };
  before(async () => {
    const build = async (operation: 'create' | 'destroy'): Promise<string> => {
      const dataDir = tempDir(suite, `fleetql-crash-template-${operation}-`);
      const setup = await start(suite, dataDir);
      await createInstance(setup, bystander, bystanderLabels);
      await assertFullyThere(setup, dataDir, bystander, bystanderLabels);
      if (operation === 'destroy') {
        await createInstance(setup, victim, victimLabels);
        await assertFullyThere(setup, dataDir, victim, victimLabels);
      }
      await stop(setup);
      assertCatalogMatchesDisk(dataDir);
      return dataDir;
    };
    [templates.create, templates.destroy] = await Promise.all([build('create'), build('destroy')]);
  });

  it('covers every crash point declared in crash-points.ts', () => {
    const source = fs.readFileSync(path.join(repoRoot, 'src/instances/crash-points.ts'), 'utf8');
    const union = /export type CrashPoint\s*=([^;]+);/.exec(source);
    assert.ok(union, 'CrashPoint union not found');
    const declared = [...union[1]!.matchAll(/'([^']+)'/g)].map((match) => match[1]!).sort();
    assert.deepEqual(Object.keys(cases).sort(), declared);
  });

  for (const [point, expected] of Object.entries(cases) as Array<[CrashPoint, Case]>) {
    it(`${point}: the instance is ${expected.outcome === 'there' ? 'fully there' : 'fully gone'} after a restart`, { timeout: 90_000 }, async (t) => {
      const dataDir = tempDir(t, 'fleetql-crash-');
      const instancesDir = path.join(dataDir, 'instances');
      const bystanderFile = path.join(instancesDir, relativeFileOf(bystander));

      // Run 1 (shared, see \`before\`): the bystander and, for destroy, the victim exist before the crash run.
      fs.cpSync(templates[expected.operation], dataDir, { recursive: true });
      const bystanderHash = sha256OfFile(bystanderFile);

      // Run 2, crash armed: the mutation must die with the process.
      const crashing = await start(t, dataDir, { FLEETQL_CRASH_AT: point });
      if (expected.operation === 'destroy') {
        // The victim's handle is open in the cache when it is destroyed, as in real use.
        await assertFullyThere(crashing, dataDir, victim, victimLabels);
      }
      const mutation =
        expected.operation === 'create'
          ? crashing.gql(`mutation { create_instance(id: "${victim}", labels: { org: "acme" }) { id state } }`)
          : crashing.gql(`mutation { destroy_instance(id: "${victim}", archive: false) { id state } }`);
      await assert.rejects(mutation, (error: unknown) => {
        assert.ok(error instanceof TypeError, `the request must fail at the HTTP level, got ${String(error)}`);
        return true;
      });
      const crashed = await crashing.exited;
      assert.deepEqual(crashed, { code: null, signal: 'SIGKILL' }, `the process must die by SIGKILL at ${point}; stderr:\n${crashing.stderr()}`);

      // The crash hit where it claims to: the victim's files on disk are those of that step.
      const afterCrash = filesUnder(instancesDir);
      assert.ok(afterCrash.includes(relativeFileOf(bystander)), 'the bystander file survives the crash');
      const victimFiles = afterCrash.filter((file) => path.basename(file).startsWith(`${victim}.db`));
      assert.equal(victimFiles.length, expected.filesAfterCrash.length, `victim files right after ${point}: ${JSON.stringify(victimFiles)}`);
      for (const pattern of expected.filesAfterCrash) {
        assert.ok(
          victimFiles.some((file) => pattern.test(file)),
          `expected a file matching ${pattern} right after ${point}: ${JSON.stringify(victimFiles)}`,
        );
      }

      // Run 3, no crash armed: recovery settles the operation the crash interrupted.
      const recovered = await start(t, dataDir);
      const reports = recoveryReports(recovered);
      if (expected.recovery === undefined) {
        assert.deepEqual(reports, [], `nothing was pending after ${point}`);
      } else {
        assert.equal(reports.length, 1, `one recovery report expected; stderr:\n${recovered.stderr()}`);
        const other = expected.recovery === 'createsRolledBack' ? 'destroysCompleted' : 'createsRolledBack';
        assert.deepEqual(reports[0]![expected.recovery], [victim]);
        assert.deepEqual(reports[0]![other], []);
      }
      if (expected.outcome === 'there') {
        await assertFullyThere(recovered, dataDir, victim, victimLabels);
      } else {
        await assertFullyGone(recovered, dataDir, victim, expected.operation === 'destroy');
      }
      await assertFullyThere(recovered, dataDir, bystander, bystanderLabels);
      assert.equal(sha256OfFile(bystanderFile), bystanderHash, 'the bystander file is byte for byte unchanged');
      const settled = await snapshot(recovered, dataDir);
      await stop(recovered);
      assertCatalogMatchesDisk(dataDir);

      // Run 4: nothing is left pending, so a second restart changes nothing.
      const again = await start(t, dataDir);
      assert.deepEqual(recoveryReports(again), [], 'a second restart must find nothing to settle');
      assert.deepEqual(await snapshot(again, dataDir), settled, 'a second restart must change nothing');

      // The id is usable again: recreated when gone, refused as existing when there.
      if (expected.outcome === 'gone') {
        const created = await createInstance(again, victim, victimLabels);
        assert.equal(created.state, 'ACTIVE');
        await assertFullyThere(again, dataDir, victim, victimLabels);
      } else {
        const duplicate = await again.gql(`mutation { create_instance(id: "${victim}") { id } }`);
        assert.equal(duplicate.errors?.[0]?.extensions?.['code'], 'INSTANCE_EXISTS', JSON.stringify(duplicate));
      }
      await assertFullyThere(again, dataDir, bystander, bystanderLabels);
      await stop(again);
      assertCatalogMatchesDisk(dataDir);
    });
  }
});
