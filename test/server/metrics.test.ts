import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { expandConfig, optionsFromEnv } from '../../src/config/index.js';
import { createLogger } from '../../src/server/index.js';
import { createMaskError } from '../../src/server/mask-error.js';
import { scoped, withRequestId } from '../../src/server/request-scope.js';
import { scrape, type Exposition } from '../helpers/prometheus.js';
import { graphql, instanceFileOf, repoRoot, spawnServer, startServer, tempDir, type InProcessServer } from '../helpers/servers.js';

const itemsMigration = path.join(repoRoot, 'test/fixtures/fleet-migrations/0001_create_items.sql');

/** A migrations directory holding the items table (version 1). */
function itemsMigrations(t: Parameters<typeof tempDir>[0]): string {
  const dir = tempDir(t);
  fs.copyFileSync(itemsMigration, path.join(dir, '0001_create_items.sql'));
  return dir;
}

/** Instances holding items (id 1, 2 with s "a", "b"; or both "a" for those in `duplicates`). */
async function createFleet(server: InProcessServer, ids: readonly string[], duplicates: ReadonlySet<string> = new Set()): Promise<void> {
  const mutation = ids.map((id, i) => `c${i}: create_instance(id: "${id}") { id } i${i}: insert_items(instance_id: "${id}", objects: [{id: 1, n: 1, s: "a"}, {id: 2, n: 2, s: "${duplicates.has(id) ? 'a' : 'b'}"}]) { affected_rows }`).join('\n');
  const result = await server.gql(`mutation { ${mutation} }`);
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
}

/** Lines a JSON logger wrote, parsed. */
function recordingLogger() {
  const lines: Array<Record<string, any>> = [];
  return { lines, logger: createLogger('debug', (line) => void lines.push(JSON.parse(line) as Record<string, any>)) };
}

/** What moved between two scrapes. */
function delta(before: Exposition, after: Exposition) {
  return (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
}

/** No label value may name an instance or carry query text. */
function assertBoundedLabels(exposition: Exposition, forbidden: readonly string[]): void {
  for (const sample of exposition.samples) {
    for (const [label, value] of Object.entries(sample.labels)) {
      assert.ok(!/[{}()\s"]/.test(value), `${sample.name}{${label}="${value}"} looks like query text`);
      for (const word of forbidden) assert.ok(!value.includes(word), `${sample.name}{${label}="${value}"} contains "${word}"`);
    }
  }
}

const fleetqlMetrics = {
  fleetql_graphql_request_duration_seconds: 'histogram',
  fleetql_graphql_errors_total: 'counter',
  fleetql_http_requests_in_flight: 'gauge',
  fleetql_http_requests_total: 'counter',
  fleetql_fleet_fanout_width: 'histogram',
  fleetql_fleet_fanout_duration_seconds: 'histogram',
  fleetql_fleet_instance_failures_total: 'counter',
  fleetql_handle_cache_open_handles: 'gauge',
  fleetql_handle_cache_descriptors: 'gauge',
  fleetql_handle_cache_unreleased_descriptors: 'gauge',
  fleetql_handle_cache_descriptor_budget: 'gauge',
  fleetql_handle_cache_hits_total: 'counter',
  fleetql_handle_cache_misses_total: 'counter',
  fleetql_handle_cache_evictions_total: 'counter',
  fleetql_fleet_prepared_reads_total: 'counter',
  fleetql_statements_executed_total: 'counter',
  fleetql_instances: 'gauge',
  fleetql_rollouts: 'gauge',
  fleetql_rollout_instances_remaining: 'gauge',
  fleetql_rollout_instances_total: 'counter',
  fleetql_rollout_instance_failures_total: 'counter',
  fleetql_archive_operation_duration_seconds: 'histogram',
  fleetql_archive_failures_total: 'counter',
};

test('/metrics answers the Prometheus text format with every fleetql metric, README-listed, and Node process metrics', async (t) => {
  const server = await startServer(t, { maxOpenDescriptors: 64 });
  const metrics = await scrape(server.origin);
  assert.match(metrics.response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4; charset=utf-8$/);
  assert.match(metrics.response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  for (const [name, type] of Object.entries(fleetqlMetrics)) {
    assert.equal(metrics.types.get(name), type, `${name} is a ${type}`);
    assert.ok(readme.includes(`\`${name}\``), `README lists ${name}`);
  }
  for (const name of metrics.types.keys()) if (name.startsWith('fleetql_')) assert.ok(name in fleetqlMetrics, `${name} is checked here`);
  assert.ok(metrics.value('process_cpu_user_seconds_total') > 0);
  assert.ok(metrics.value('nodejs_heap_size_total_bytes') > 0);
  assert.equal(metrics.value('fleetql_handle_cache_descriptor_budget'), 64);
  assert.equal(metrics.value('fleetql_http_requests_in_flight'), 1, 'the scrape itself');
  for (const state of ['PENDING', 'RUNNING', 'PAUSED', 'FAILED']) {
    assert.equal(metrics.samples.filter((s) => s.name === 'fleetql_rollouts' && s.labels['state'] === state).length, 1, `a rollouts sample for ${state}, 0 included`);
  }

  const head = await fetch(`${server.origin}/metrics`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  const post = await fetch(`${server.origin}/metrics`, { method: 'POST' });
  assert.equal(post.status, 405);
});

test('GraphQL requests are timed by operation type and outcome, and their errors counted by code', async (t) => {
  const server = await startServer(t, { migrationsDir: itemsMigrations(t) });
  const before = await scrape(server.origin);
  assert.equal((await server.gql(`mutation Make { create_instance(id: "metrics-a") { id } }`)).errors, undefined);
  assert.equal((await server.gql(`query Named { instances { id } }`)).errors, undefined);
  assert.equal((await server.gql(`{ instance(id: "metrics-none") { id } }`)).errors?.[0]?.extensions?.['code'], 'INSTANCE_NOT_FOUND');
  assert.equal((await server.gql(`{ no_such_field }`)).errors?.[0]?.extensions?.['code'], 'GRAPHQL_VALIDATION_FAILED');
  assert.equal((await server.gql(`{ instance(`)).errors?.[0]?.extensions?.['code'], 'GRAPHQL_PARSE_FAILED');
  assert.equal((await fetch(`${server.origin}/no/metrics-a`)).status, 404);
  const after = await scrape(server.origin);
  const moved = delta(before, after);

  const requests = 'fleetql_graphql_request_duration_seconds_count';
  assert.equal(moved(requests, { operation_type: 'mutation', outcome: 'ok' }), 1);
  assert.equal(moved(requests, { operation_type: 'query', outcome: 'ok' }), 1);
  assert.equal(moved(requests, { operation_type: 'query', outcome: 'error' }), 2);
  assert.equal(moved(requests, { operation_type: 'unknown', outcome: 'error' }), 1, 'a document that does not parse has no operation type');
  assert.equal(moved(requests), 5);
  assert.ok(moved('fleetql_graphql_request_duration_seconds_sum') > 0);
  assert.equal(moved('fleetql_graphql_errors_total', { operation_type: 'query', code: 'INSTANCE_NOT_FOUND' }), 1);
  assert.equal(moved('fleetql_graphql_errors_total', { operation_type: 'query', code: 'GRAPHQL_VALIDATION_FAILED' }), 1);
  assert.equal(moved('fleetql_graphql_errors_total', { operation_type: 'unknown', code: 'GRAPHQL_PARSE_FAILED' }), 1);
  assert.equal(moved('fleetql_graphql_errors_total'), 3);
  assert.equal(moved('fleetql_http_requests_total', { route: '/graphql' }), 5);
  assert.equal(moved('fleetql_http_requests_total', { route: '/metrics', status: '200' }), 1, 'the first scrape, counted once it ended');
  assert.equal(moved('fleetql_http_requests_total', { route: 'other', status: '404' }), 1, 'an unknown path is "other", never itself');
  assert.ok(moved('fleetql_statements_executed_total') > 0);
  assert.equal(after.value('fleetql_instances', { state: 'ACTIVE', schema_version: '1' }), 1);
  assert.equal(after.value('fleetql_instances'), 1);
  assertBoundedLabels(after, ['metrics-a', 'metrics-none', 'Named', 'Make', 'instances']);
});

test('a fan-out is measured: width and duration per fleet field, failures of a damaged instance by code, handle cache counters', async (t) => {
  const migrationsDir = itemsMigrations(t);
  const first = await startServer(t, { migrationsDir });
  const ids = ['fan-0', 'fan-1', 'fan-2', 'fan-3', 'fan-4'];
  await createFleet(first, ids);
  await first.close(); // handles closed: the damage below is what the next open sees
  fs.writeFileSync(instanceFileOf(first.dataDir, 'fan-3'), Buffer.alloc(8192, 0xab));
  const server = await startServer(t, { migrationsDir, dataDir: first.dataDir, maxOpenDescriptors: 64 });

  const query = `query Fleet { fleet { items_aggregate { aggregate { sum { n } } coverage { failed } } items(limit: 3) { id } } }`;
  const before = await scrape(server.origin);
  const answer = await server.gql(query);
  assert.equal(answer.data?.['fleet'].items_aggregate.aggregate.sum.n, 12);
  assert.deepEqual(
    answer.errors?.map((e) => [e.extensions?.['code'], e.extensions?.['instance_id']]),
    [
      ['INSTANCE_UNAVAILABLE', 'fan-3'],
      ['INSTANCE_UNAVAILABLE', 'fan-3'],
    ],
  );
  const after = await scrape(server.origin);
  const moved = delta(before, after);
  for (const field of ['aggregate', 'list']) {
    assert.equal(moved('fleetql_fleet_fanout_width_count', { field }), 1, `one ${field} fan-out`);
    assert.equal(moved('fleetql_fleet_fanout_width_sum', { field }), 5, `${field} fanned out to 5 instances`);
    assert.equal(moved('fleetql_fleet_fanout_width_bucket', { field, le: '2' }), 0);
    assert.equal(moved('fleetql_fleet_fanout_width_bucket', { field, le: '5' }), 1);
    assert.equal(moved('fleetql_fleet_fanout_duration_seconds_count', { field }), 1);
  }
  assert.equal(moved('fleetql_fleet_fanout_width_count'), 2, 'no other fan-out (the count was not asked)');
  assert.equal(moved('fleetql_fleet_instance_failures_total', { code: 'INSTANCE_UNAVAILABLE' }), 2);
  assert.equal(moved('fleetql_fleet_instance_failures_total'), 2);
  assert.equal(moved('fleetql_graphql_request_duration_seconds_count', { operation_type: 'query', outcome: 'error' }), 1);
  assert.equal(moved('fleetql_graphql_errors_total', { operation_type: 'query', code: 'INSTANCE_UNAVAILABLE' }), 2);

  const cache = server.fleetql.instances().cacheStats();
  assert.equal(after.value('fleetql_handle_cache_misses_total'), cache.misses);
  assert.ok(moved('fleetql_handle_cache_misses_total') >= 4, 'the four sound files were opened');
  assert.equal(after.value('fleetql_handle_cache_open_handles'), cache.open);
  assert.ok(cache.open >= 4);
  assert.equal(after.value('fleetql_handle_cache_descriptors'), cache.descriptors + cache.pendingDescriptors);
  assert.equal(after.value('fleetql_handle_cache_descriptor_budget'), 64);

  await server.gql(query);
  const warm = await scrape(server.origin);
  assert.ok(delta(after, warm)('fleetql_handle_cache_hits_total') >= 8, 'a warm repeat reuses the open handles for both fields');
  assertBoundedLabels(warm, [...ids, 'Fleet', 'items']);
});

test('a rollout reports progress: rollouts by state, instances remaining, instances migrated and failed; its log lines carry the request id', async (t) => {
  const migrationsDir = itemsMigrations(t);
  const first = await startServer(t, { migrationsDir });
  const ids = ['roll-0', 'roll-1', 'roll-2', 'roll-3'];
  await createFleet(first, ids, new Set(['roll-3']));
  await first.close();
  fs.writeFileSync(path.join(migrationsDir, '0002_unique_s.sql'), 'CREATE UNIQUE INDEX items_unique_s ON items (s);\n');
  const { lines, logger } = recordingLogger();
  const server = await startServer(t, { migrationsDir, dataDir: first.dataDir }, { logger });

  const before = await scrape(server.origin);
  const started = await graphql(server.url, 'mutation { start_rollout(target_version: 2, strategy: {canary: 1, pause_after_canary: true, max_failures: 10}) { id } }', undefined, { 'x-request-id': 'start-rollout-1' });
  assert.equal(started.headers.get('x-request-id'), 'start-rollout-1');
  const id = started.data!['start_rollout'].id as string;
  assert.equal((await server.fleetql.rollouts().settled(Number(id))).state, 'PAUSED');
  const paused = await scrape(server.origin);
  assert.equal(paused.value('fleetql_rollouts', { state: 'PAUSED' }), 1);
  assert.equal(paused.value('fleetql_rollouts', { state: 'RUNNING' }), 0);
  assert.equal(paused.value('fleetql_rollout_instances_remaining', { rollout_state: 'PAUSED' }), 3);
  assert.equal(delta(before, paused)('fleetql_rollout_instances_total', { kind: 'forward', outcome: 'done' }), 1, 'the canary');
  assert.equal(paused.value('fleetql_instances', { state: 'ACTIVE', schema_version: '2' }), 1);

  // A subscription watches it: in flight while its stream is open, counted once the stream ends.
  const stream = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-request-id': 'watch-1' },
    body: JSON.stringify({ query: `subscription Watch { rollout_progress(id: "${id}") { state } }` }),
  });
  assert.equal(stream.status, 200);
  assert.equal((await scrape(server.origin)).value('fleetql_http_requests_in_flight'), 2, 'the scrape and the open stream');
  assert.equal((await server.gql(`mutation { resume_rollout(id: "${id}") { id } }`)).errors, undefined);
  assert.equal((await server.fleetql.rollouts().settled(Number(id))).state, 'FAILED');
  const failed = await scrape(server.origin);
  assert.equal(failed.value('fleetql_rollouts', { state: 'FAILED' }), 1, 'a failed rollout still holds its instances');
  assert.equal(failed.value('fleetql_rollout_instances_remaining'), 0);
  assert.equal(failed.value('fleetql_http_requests_in_flight'), 2, 'the stream stays open on a failed rollout');
  await server.gql(`mutation { abort_rollout(id: "${id}") { id } }`); // ends the stream
  assert.match(await stream.text(), /"ABORTED"/);
  const watched = await scrape(server.origin);
  assert.equal(watched.value('fleetql_http_requests_in_flight'), 1, 'the stream has ended');
  assert.equal(delta(before, watched)('fleetql_graphql_request_duration_seconds_count', { operation_type: 'subscription', outcome: 'ok' }), 1);
  const watchLine = lines.find((line) => line['msg'] === 'request' && line['request_id'] === 'watch-1');
  assert.deepEqual([watchLine?.['operation_type'], watchLine?.['operation_name'], watchLine?.['status']], ['subscription', 'Watch', 200]);
  assert.ok(watchLine !== undefined && lines.indexOf(watchLine) > lines.findIndex((line) => line['msg'] === 'rollout finished'), 'logged when the stream ended');
  const after = await scrape(server.origin);
  const moved = delta(before, after);
  assert.equal(moved('fleetql_rollout_instances_total', { kind: 'forward', outcome: 'done' }), 3);
  assert.equal(moved('fleetql_rollout_instances_total', { kind: 'forward', outcome: 'failed' }), 1);
  assert.equal(moved('fleetql_rollout_instance_failures_total', { kind: 'forward', code: 'MIGRATION_FAILED' }), 1);
  assert.equal(after.value('fleetql_rollouts', { state: 'PAUSED' }), 0);
  assert.equal(after.value('fleetql_rollouts', { state: 'FAILED' }), 0);
  assert.equal(after.value('fleetql_rollouts'), 0, 'an aborted rollout holds no instances');
  assert.equal(after.value('fleetql_rollout_instances_remaining'), 0);
  assert.equal(after.value('fleetql_instances', { state: 'ACTIVE', schema_version: '2' }), 3);
  assert.equal(after.value('fleetql_instances', { state: 'ACTIVE', schema_version: '1' }), 1);
  assertBoundedLabels(after, ids);

  const startLine = lines.find((line) => line['msg'] === 'rollout started');
  assert.equal(startLine?.['request_id'], 'start-rollout-1', 'a line logged while handling a request carries its id');
});

test('archive operations are counted and timed by operation and outcome, failures by code', async (t) => {
  const server = await startServer(t, { migrationsDir: itemsMigrations(t) });
  await createFleet(server, ['arch-a', 'arch-b']);
  const before = await scrape(server.origin);
  const archived = await server.gql(`mutation { archive_instance(id: "arch-a") { id } }`);
  assert.equal(archived.errors, undefined, JSON.stringify(archived.errors));
  const archiveId = archived.data!['archive_instance'].id as string;
  assert.equal((await server.gql(`mutation { restore_instance(archive_id: "${archiveId}", as_id: "arch-copy") { id } }`)).errors, undefined);
  assert.equal((await server.gql(`mutation { archive_instance(id: "arch-none") { id } }`)).errors?.[0]?.extensions?.['code'], 'INSTANCE_NOT_FOUND');
  assert.equal((await server.gql(`mutation { restore_instance(archive_id: "a-none") { id } }`)).errors?.[0]?.extensions?.['code'], 'ARCHIVE_NOT_FOUND');
  assert.equal((await server.gql(`mutation { archive_instance(id: "arch-b", retire: true) { id } }`)).errors, undefined);
  assert.equal((await server.gql(`mutation { destroy_instance(id: "arch-copy") { id } }`)).errors, undefined);
  const after = await scrape(server.origin);
  const moved = delta(before, after);
  const operations = 'fleetql_archive_operation_duration_seconds_count';
  assert.equal(moved(operations, { operation: 'archive', outcome: 'ok' }), 1);
  assert.equal(moved(operations, { operation: 'archive', outcome: 'error' }), 1);
  assert.equal(moved(operations, { operation: 'restore', outcome: 'ok' }), 1);
  assert.equal(moved(operations, { operation: 'restore', outcome: 'error' }), 1);
  assert.equal(moved(operations, { operation: 'retire', outcome: 'ok' }), 1);
  assert.equal(moved(operations, { operation: 'destroy', outcome: 'ok' }), 1);
  assert.equal(moved(operations), 6);
  assert.equal(moved('fleetql_archive_failures_total', { operation: 'archive', code: 'INSTANCE_NOT_FOUND' }), 1);
  assert.equal(moved('fleetql_archive_failures_total', { operation: 'restore', code: 'ARCHIVE_NOT_FOUND' }), 1);
  assert.equal(moved('fleetql_archive_failures_total'), 2);
  assert.equal(after.value('fleetql_instances', { state: 'ARCHIVED' }), 1);
  assert.equal(after.value('fleetql_instances', { state: 'DESTROYED' }), 1);
  assertBoundedLabels(after, ['arch-a', 'arch-b', 'arch-copy', 'arch-none', archiveId]);
});

test('FLEETQL_METRICS=false: /metrics is not served, GraphQL is', async (t) => {
  assert.deepEqual(optionsFromEnv({ FLEETQL_METRICS: 'false', FLEETQL_METRICS_PORT: '9464' }), { metrics: false, metricsPort: 9464 });
  for (const bad of [() => optionsFromEnv({ FLEETQL_METRICS: 'perhaps' }), () => expandConfig({ metricsPort: 70_000 }), () => expandConfig({ port: 4000, metricsPort: 4000 })]) {
    assert.throws(bad, (error: any) => error.code === 'CONFIG_INVALID');
  }
  const server = await startServer(t, optionsFromEnv({ FLEETQL_METRICS: 'false' }));
  assert.equal(server.fleetql.metricsHandler, undefined);
  const response = await fetch(`${server.origin}/metrics`);
  assert.equal(response.status, 404);
  assert.equal((await server.gql(`{ instances { id } }`)).errors, undefined);
});

test('every request gets one access log line with its id, which the client receives too; no query text is logged', async (t) => {
  const { lines, logger } = recordingLogger();
  const server = await startServer(t, {}, { logger });
  const secret = 'needle_in_the_query';
  const query = `query Lookup { instance(id: "${secret.replaceAll('_', '-')}") { id } }`;
  const given = await graphql(server.url, query, undefined, { 'x-request-id': 'client.chosen:1' });
  assert.equal(given.headers.get('x-request-id'), 'client.chosen:1');
  const fresh = await fetch(`${server.url}?query=${encodeURIComponent(`{ instances(where: {id: {_eq: "${secret}"}}) { id } }`)}`, { headers: { accept: 'application/json', 'x-request-id': 'not acceptable!', 'x-graphql-yoga-csrf': '1' } });
  assert.equal(fresh.status, 200);
  const freshId = fresh.headers.get('x-request-id')!;
  assert.match(freshId, /^[0-9a-f-]{36}$/, 'an unusable id is replaced');
  await fetch(`${server.origin}/healthz`);
  await server.close(); // every response has ended: every access line is written

  const access = lines.filter((line) => line['msg'] === 'request');
  const lookup = access.find((line) => line['request_id'] === 'client.chosen:1');
  assert.ok(lookup, 'the access line carries the client request id');
  assert.deepEqual(
    { ...lookup, time: undefined, duration_ms: undefined },
    { time: undefined, level: 'info', msg: 'request', request_id: 'client.chosen:1', method: 'POST', path: '/graphql', status: 200, operation_type: 'query', operation_name: 'Lookup', error_codes: ['INSTANCE_NOT_FOUND'], duration_ms: undefined },
  );
  assert.equal(typeof lookup['duration_ms'], 'number');
  const get = access.find((line) => line['request_id'] === freshId);
  assert.deepEqual([get?.['method'], get?.['path'], get?.['status'], get?.['operation_type'], get?.['level']], ['GET', '/graphql', 200, 'query', 'info'], 'the path leaves the query string out');
  assert.equal(access.find((line) => line['path'] === '/healthz')?.['level'], 'debug', 'probes log at debug');
  for (const line of lines) assert.ok(!JSON.stringify(line).includes(secret) && !JSON.stringify(line).includes(secret.replaceAll('_', '-')), `no query text in ${JSON.stringify(line)}`);
});

test('FLEETQL_METRICS_PORT serves /metrics on a listener of its own, and not on the API port', async (t) => {
  const server = await spawnServer(t, { args: ['--data', tempDir(t), '--no-demo'], env: { FLEETQL_METRICS_PORT: '0' } });
  const line = server
    .stderr()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, string>)
    .find((l) => l['msg'] === 'metrics listening');
  assert.ok(line, server.stderr());
  const metrics = await fetch(line['url']!);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /# TYPE fleetql_instances gauge/);
  assert.equal((await fetch(new URL('/graphql', line['url']!))).status, 404);
  assert.equal((await fetch(`${server.origin}/metrics`)).status, 404);
  assert.equal((await server.gql(`{ instances { id } }`)).errors, undefined);
});

test('an unexpected error logged while a request is handled carries its request id (fetch handler, no Node response)', async () => {
  const { lines, logger } = recordingLogger();
  const scopedLogger = withRequestId(logger);
  const handle = scoped(
    async () => {
      await new Promise((resolve) => setImmediate(resolve)); // the id survives awaits
      createMaskError(scopedLogger)(new Error('SQLITE_CORRUPT: /srv/x.db'), 'Unexpected error.');
      return new Response('masked');
    },
    { logger: scopedLogger, metrics: undefined },
  );
  const response = await handle(new Request('http://fleetql.test/graphql?query=%7Bsecret%7D', { headers: { 'x-request-id': 'req-42' } }), {});
  assert.equal(response.headers.get('x-request-id'), 'req-42');
  const masked = lines.find((line) => line['msg'] === 'unexpected error');
  assert.equal(masked?.['request_id'], 'req-42');
  assert.deepEqual(
    lines.filter((line) => line['msg'] === 'request').map((line) => [line['request_id'], line['path'], line['status']]),
    [['req-42', '/graphql', 200]],
  );
  scopedLogger.info('outside any request');
  assert.equal(lines.at(-1)?.['request_id'], undefined);
});
