/**
 * `fleetql serve`, the real CLI, as a child process: the ready line, health and readiness,
 * configuration from flags and environment, the demo fleet, and clean shutdown on signals.
 * Every test has its own temporary data directory.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { demoMigrations, filesUnder, graphql, runCli, spawnServer, tempDir } from '../helpers/servers.js';

const readyLine = /^fleetql listening on http:\/\/127\.0\.0\.1:(\d+)\/graphql\n$/;

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** A port that was free a moment ago (for the tests that must know the port before the server prints it). */
async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Holds a port busy for the rest of the test. */
async function occupyPort(t: TestContext): Promise<number> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** Opens a TCP connection and reports how it went: 'connected' (closed again at once) or the error code. */
async function tryConnect(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

async function canBind(host: string): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, host, () => server.close(() => resolve(true)));
  });
}

/** A migrations directory holding only `0001_create_widgets.sql`. */
function widgetMigrations(t: TestContext): string {
  const dir = tempDir(t, 'fleetql-migrations-');
  fs.writeFileSync(path.join(dir, '0001_create_widgets.sql'), 'CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n');
  return dir;
}

function demoMigrationVersions(): number[] {
  return fs
    .readdirSync(demoMigrations)
    .filter((name) => /^\d{4,}_[a-z0-9_]+\.sql$/.test(name))
    .map((name) => Number(name.slice(0, name.indexOf('_'))))
    .sort((a, b) => a - b);
}

interface InstanceRow {
  id: string;
  labels: Record<string, string>;
  state: string;
  schema_version: number;
  created_at: string;
}

const fleetQuery = `{
  instances(limit: 1000, order_by: [{ id: asc }]) { id labels state schema_version created_at }
  migrations { version name is_head instances }
}`;

interface FleetAnswer {
  instances: InstanceRow[];
  migrations: Array<{ version: number; name: string; is_head: boolean; instances: number }>;
}

async function fleetOf(url: string): Promise<FleetAnswer> {
  const response = await graphql<FleetAnswer>(url, fleetQuery);
  assert.equal(response.status, 200);
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  assert.ok(response.data);
  return response.data;
}

function countBy(rows: InstanceRow[], label: string): Map<string | undefined, number> {
  const counts = new Map<string | undefined, number>();
  for (const row of rows) counts.set(row.labels[label], (counts.get(row.labels[label]) ?? 0) + 1);
  return counts;
}

/** Resolves once `text()` contains `needle`, checking whenever the stream yields data. */
function whenOutput(stream: NodeJS.ReadableStream, text: () => string, needle: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (text().includes(needle)) {
        stream.off('data', check);
        resolve();
      }
    };
    stream.on('data', check);
    check();
  });
}

// Each test has its own processes, data directory and ports, so a few run side by side.
describe('fleetql serve (CLI)', { concurrency: 3 }, () => {
  test('prints exactly the ready line with the real port, then answers /healthz, /readyz and GraphQL', async (t) => {
    const dataDir = tempDir(t);
    const server = await spawnServer(t, { args: ['--data', dataDir, '--no-demo'] });

    const match = readyLine.exec(server.stdout());
    assert.ok(match, `stdout is not exactly one ready line: ${JSON.stringify(server.stdout())}`);
    const port = Number(match[1]);
    assert.ok(Number.isInteger(port) && port > 0 && port <= 65535, `port ${port}`);
    assert.equal(server.url, `http://127.0.0.1:${port}/graphql`);

    const health = await fetch(`${server.origin}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const readiness = await fetch(`${server.origin}/readyz`);
    assert.equal(readiness.status, 200);
    assert.deepEqual(await readiness.json(), { status: 'ready' });

    const created = await server.gql<{ create_instance: { id: string; labels: unknown; schema_version: number } }>(
      `mutation { create_instance(id: "cli-check", labels: { org: "acme" }) { id labels schema_version } }`,
    );
    assert.equal(created.status, 200);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    assert.deepEqual(created.data, { create_instance: { id: 'cli-check', labels: { org: 'acme' }, schema_version: demoMigrationVersions().at(-1) } });

    const read = await server.gql<{ instance: { id: string; state: string } | null }>(`{ instance(id: "cli-check") { id state } }`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.data, { instance: { id: 'cli-check', state: 'ACTIVE' } });
    // stdout carries the ready line only; the logs go to stderr.
    assert.match(server.stdout(), readyLine);
  });

  test('FLEETQL_HOST, FLEETQL_PORT=0, FLEETQL_DATA and FLEETQL_MIGRATIONS configure the server without flags', async (t) => {
    if (!(await canBind('127.0.0.2'))) {
      t.skip('127.0.0.2 cannot be bound here (not Linux loopback)');
      return;
    }
    const dataDir = path.join(tempDir(t), 'from-env');
    const migrationsDir = widgetMigrations(t);
    const cli = await spawnServer(t, {
      defaults: false,
      env: { FLEETQL_HOST: '127.0.0.2', FLEETQL_PORT: '0', FLEETQL_DATA: dataDir, FLEETQL_MIGRATIONS: migrationsDir, FLEETQL_DEMO: 'false' },
    });

    const match = /^fleetql listening on http:\/\/127\.0\.0\.2:(\d+)\/graphql\n$/.exec(cli.stdout());
    assert.ok(match, `ready line: ${JSON.stringify(cli.stdout())}`);
    const port = Number(match[1]);
    assert.ok(port > 0 && port <= 65535, `FLEETQL_PORT=0 must pick a real port, got ${port}`);
    assert.equal(await tryConnect(port, '127.0.0.1'), 'ECONNREFUSED', 'bound to 127.0.0.2 only');

    assert.ok(fs.existsSync(path.join(dataDir, 'catalog.db')), 'catalog.db is in FLEETQL_DATA');
    const answer = await graphql<{ migrations: Array<{ version: number; name: string }>; instances: unknown[] }>(cli.url, `{ migrations { version name } instances { id } }`);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.data, { migrations: [{ version: 1, name: 'create_widgets' }], instances: [] });
  });

  test('flags win over the environment: --host, --port, --data, --migrations', async (t) => {
    const busyPort = await occupyPort(t);
    const envDataDir = path.join(tempDir(t), 'env-data');
    const flagDataDir = path.join(tempDir(t), 'flag-data');
    const server = await spawnServer(t, {
      args: ['--host', '127.0.0.1', '--port', '0', '--data', flagDataDir, '--migrations', demoMigrations, '--no-demo'],
      env: { FLEETQL_HOST: '127.0.0.2', FLEETQL_PORT: String(busyPort), FLEETQL_DATA: envDataDir, FLEETQL_MIGRATIONS: widgetMigrations(t) },
    });

    const match = readyLine.exec(server.stdout());
    assert.ok(match, `ready line: ${JSON.stringify(server.stdout())}`);
    assert.notEqual(Number(match[1]), busyPort);
    assert.ok(fs.existsSync(path.join(flagDataDir, 'catalog.db')), '--data holds catalog.db');
    assert.equal(fs.existsSync(envDataDir), false, 'FLEETQL_DATA is not touched when --data is given');
    const answer = await server.gql<{ migrations: Array<{ name: string }> }>(`{ migrations { name } }`);
    assert.deepEqual(
      answer.data?.migrations.map((m) => m.name),
      fs.readdirSync(demoMigrations).filter((name) => name.endsWith('.sql')).sort().map((name) => name.replace(/^\d+_/, '').replace(/\.sql$/, '')),
    );
  });

  test('an invalid port exits non-zero with CONFIG_INVALID and no stack trace', async (t) => {
    const root = tempDir(t);
    const cases: Array<{ label: string; args: string[]; env: Record<string, string> }> = [
      { label: '--port abc', args: ['--port', 'abc'], env: {} },
      { label: 'FLEETQL_PORT=70000', args: [], env: { FLEETQL_PORT: '70000' } },
    ];
    const results = await Promise.all(
      cases.map(async ({ label, args, env }, index) => {
        const dataDir = path.join(root, `data-${index}`);
        const result = await runCli(['serve', '--data', dataDir, '--no-demo', ...args], { env: { FLEETQL_MIGRATIONS: demoMigrations, ...env }, timeoutMs: 30_000 });
        return { label, dataDir, ...result };
      }),
    );
    for (const { label, dataDir, code, signal, stdout, stderr } of results) {
      assert.equal(signal, null, `${label}: killed by ${signal}`);
      assert.ok(code !== null && code !== 0, `${label}: exit code ${code}`);
      assert.match(stderr, /CONFIG_INVALID/, `${label}: stderr ${stderr}`);
      assert.match(stderr, /port/i, `${label}: the message names the port`);
      assert.doesNotMatch(stderr, /^\s+at /m, `${label}: no stack trace in\n${stderr}`);
      assert.doesNotMatch(stdout, /listening/, `${label}: no ready line`);
      assert.equal(fs.existsSync(dataDir), false, `${label}: nothing is created before the configuration is valid`);
    }
  });

  test('a new data directory gets the demo fleet (48 instances, 3 orgs, 2 regions, at the head), and a restart does not seed again', async (t) => {
    const dataDir = tempDir(t);
    const versions = demoMigrationVersions();
    const head = versions.at(-1)!;

    const first = await spawnServer(t, { args: ['--data', dataDir] });
    const fleet = await fleetOf(first.url);
    assert.equal(fleet.instances.length, 48);
    assert.equal(new Set(fleet.instances.map((i) => i.id)).size, 48);
    const orgs = countBy(fleet.instances, 'org');
    assert.equal(orgs.size, 3, `orgs: ${[...orgs.keys()].join(', ')}`);
    for (const [org, n] of orgs) assert.equal(n, 16, `org ${org}`);
    const regions = countBy(fleet.instances, 'region');
    assert.equal(regions.size, 2, `regions: ${[...regions.keys()].join(', ')}`);
    for (const [region, n] of regions) assert.equal(n, 24, `region ${region}`);
    assert.ok(!orgs.has(undefined) && !regions.has(undefined), 'every instance has org and region labels');
    for (const instance of fleet.instances) {
      assert.equal(instance.schema_version, head, `${instance.id} schema_version`);
      assert.equal(instance.state, 'ACTIVE', `${instance.id} state`);
    }
    assert.deepEqual(
      fleet.migrations.map((m) => ({ version: m.version, is_head: m.is_head, instances: m.instances })),
      versions.map((version) => ({ version, is_head: version === head, instances: version === head ? 48 : 0 })),
    );

    first.child.kill('SIGTERM');
    assert.deepEqual(await first.exited, { code: 0, signal: null });

    const second = await spawnServer(t, { args: ['--data', dataDir] });
    const again = await fleetOf(second.url);
    assert.equal(again.instances.length, 48, 'a restart on an existing data directory seeds nothing');
    assert.deepEqual(again.instances, fleet.instances, 'the very same instances, not re-created ones');
    assert.doesNotMatch(second.stderr(), /seeded the demo fleet/);
  });

  test('--no-demo and FLEETQL_DEMO=false seed nothing, and a later start without the opt-out does not seed either', async (t) => {
    const flagDir = tempDir(t);
    const envDir = tempDir(t);
    const [byFlag, byEnv] = await Promise.all([
      spawnServer(t, { args: ['--data', flagDir, '--no-demo'] }),
      spawnServer(t, { args: ['--data', envDir], env: { FLEETQL_DEMO: 'false' } }),
    ]);
    for (const [label, server, dir] of [['--no-demo', byFlag, flagDir], ['FLEETQL_DEMO=false', byEnv, envDir]] as const) {
      const fleet = await fleetOf(server.url);
      assert.deepEqual(fleet.instances, [], label);
      assert.ok(fleet.migrations.every((m) => m.instances === 0), label);
      assert.deepEqual(filesUnder(path.join(dir, 'instances')), [], `${label}: no instance files`);
      assert.ok(fs.existsSync(path.join(dir, 'catalog.db')), `${label}: the catalog exists`);
    }
    byFlag.child.kill('SIGTERM');
    assert.deepEqual(await byFlag.exited, { code: 0, signal: null });

    // The data directory is no longer new: no demo even though this start does not opt out.
    const restarted = await spawnServer(t, { args: ['--data', flagDir], env: { FLEETQL_DEMO: 'true' } });
    assert.deepEqual((await fleetOf(restarted.url)).instances, []);
  });

  test('SIGTERM: a request in flight gets its full answer, new connections are refused, the process exits 0', async (t) => {
    const dataDir = tempDir(t);
    const server = await spawnServer(t, { args: ['--data', dataDir], env: { FLEETQL_SHUTDOWN_TIMEOUT_MS: '60000' } });
    const port = portOf(server.url);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());

    const body = JSON.stringify({
      query: `{ instances(limit: 1000, order_by: [{ id: asc }]) { id schema_version migrations_applied { version name checksum } } }`,
    });
    // `Expect: 100-continue`: the server answers 100 only once it has parsed the request and handed
    // it to fleetql, so after 'continue' the request is provably in flight, its body still to come.
    const request = http.request(server.url, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        'content-length': Buffer.byteLength(body),
        expect: '100-continue',
      },
    });
    const responded = once(request, 'response') as Promise<[http.IncomingMessage]>;
    request.flushHeaders();
    await once(request, 'continue');

    server.child.kill('SIGTERM');
    await whenOutput(server.child.stderr!, server.stderr, '"msg":"shutting down"');
    // The listener closes right after that log line; wait for it, then the port must refuse.
    let attempt = await tryConnect(port);
    for (let i = 0; attempt === 'connected' && i < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      attempt = await tryConnect(port);
    }
    assert.equal(attempt, 'ECONNREFUSED', 'no new connections while shutting down');
    assert.equal(server.child.exitCode, null, 'still running: the request in flight holds the shutdown');

    request.end(body);
    const [response] = await responded;
    let text = '';
    for await (const chunk of response) text += (chunk as Buffer).toString();
    assert.equal(response.statusCode, 200);
    const answer = JSON.parse(text) as { data?: { instances: Array<{ id: string; schema_version: number; migrations_applied: Array<{ version: number }> }> }; errors?: unknown };
    assert.equal(answer.errors, undefined, text.slice(0, 500));
    const head = demoMigrationVersions().at(-1)!;
    assert.equal(answer.data?.instances.length, 48);
    for (const instance of answer.data!.instances) {
      assert.deepEqual(
        instance.migrations_applied.map((m) => m.version),
        demoMigrationVersions(),
        `${instance.id} migrations_applied`,
      );
      assert.equal(instance.schema_version, head);
    }

    assert.deepEqual(await server.exited, { code: 0, signal: null });
    assert.match(server.stderr(), /"msg":"stopped"/);
    assert.equal(await tryConnect(port), 'ECONNREFUSED', 'the port refuses connections after shutdown');
  });

  // SIGTERM is covered above, with a request in flight.
  for (const signal of ['SIGINT'] as const) {
    test(`${signal} with an idle keep-alive connection open: the process exits 0 and the port refuses connections`, async (t) => {
      const dataDir = tempDir(t);
      // A long cut-off: idle connections must be closed by the shutdown itself, not by the deadline.
      const server = await spawnServer(t, { args: ['--data', dataDir, '--no-demo'], env: { FLEETQL_SHUTDOWN_TIMEOUT_MS: '600000' } });
      const port = portOf(server.url);

      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => agent.destroy());
      const health = await new Promise<number | undefined>((resolve, reject) => {
        http.get(`${server.origin}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        }).on('error', reject);
      });
      assert.equal(health, 200);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(Object.values(agent.freeSockets).flat().length, 1, 'a kept-alive idle connection is open');

      server.child.kill(signal);
      assert.deepEqual(await server.exited, { code: 0, signal: null });
      assert.match(server.stderr(), new RegExp(`"msg":"shutting down","signal":"${signal}"`));
      assert.equal(await tryConnect(port), 'ECONNREFUSED');
    });
  }

  test('/readyz answers 503 while the demo fleet is being seeded, /healthz 200, then /readyz 200 once ready', async (t) => {
    // A migration slow enough (pure CPU, one row stored) that seeding 48 instances takes seconds.
    const migrationsDir = tempDir(t, 'fleetql-migrations-');
    for (const name of fs.readdirSync(demoMigrations)) fs.copyFileSync(path.join(demoMigrations, name), path.join(migrationsDir, name));
    const next = String(demoMigrationVersions().length + 1).padStart(4, '0');
    fs.writeFileSync(
      path.join(migrationsDir, `${next}_slow_startup.sql`),
      'CREATE TABLE slow_startup AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000) SELECT count(*) AS n FROM c;\n',
    );
    const dataDir = tempDir(t);
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    // The server binds before it starts up; the ready line comes only at the end.
    const starting = spawnServer(t, { args: ['--port', String(port), '--data', dataDir], env: { FLEETQL_MIGRATIONS: migrationsDir } });
    starting.catch(() => undefined);

    const get = async (pathname: string): Promise<{ status: number; body: unknown } | 'refused'> => {
      try {
        const response = await fetch(`${origin}${pathname}`);
        return { status: response.status, body: await response.json() };
      } catch (error) {
        if ((error as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') return 'refused';
        throw error;
      }
    };
    let first = await get('/readyz');
    for (let i = 0; first === 'refused' && i < 1500; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      first = await get('/readyz');
    }
    assert.notEqual(first, 'refused', 'the server never accepted a connection');
    // The first answer of a server that binds before it seeds must be "starting".
    assert.deepEqual(first, { status: 503, body: { status: 'starting' } }, 'the first /readyz answer, while the demo fleet is being seeded');
    assert.deepEqual(await get('/healthz'), { status: 200, body: { status: 'ok' } });
    const during = await graphql(`${origin}/graphql`, '{ instances { id } }');
    const stillStarting = await get('/readyz');
    if (stillStarting !== 'refused' && stillStarting.status === 503) {
      // Answered between two "starting" answers: GraphQL must have been refused too.
      assert.equal(during.status, 503);
      assert.equal(during.errors?.[0]?.extensions?.['code'], 'SERVICE_UNAVAILABLE');
    } else {
      t.diagnostic('startup finished before the GraphQL check; its 503 was not observed');
    }

    const server = await starting;
    assert.equal(portOf(server.url), port);
    assert.deepEqual(await get('/readyz'), { status: 200, body: { status: 'ready' } });
    assert.equal((await fleetOf(server.url)).instances.length, 48);
  });
});
