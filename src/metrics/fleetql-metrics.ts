import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ArchiveObserver, ArchiveOperation } from '../archive/index.js';
import type { FanOutObserver, FleetFieldKind } from '../fleet/index.js';
import type { RolloutObserver } from '../rollouts/index.js';
import { codeLabel, operationTypeLabel, routeLabel } from './metric-labels.js';

/**
 * What the metrics read on scrape, as plain values: the subsystems keep their own counters and
 * know nothing of Prometheus. Every call must be cheap (a scrape may come every few seconds).
 */
export interface MetricsSources {
  /** The instance handle cache (instances/handle-cache.ts `stats()`). */
  cacheStats(): { open: number; descriptors: number; pendingDescriptors: number; hits: number; misses: number; evictions: number };
  /** Fan-out reads run as an earlier asking of the same question prepared them (InstanceService.preparedReadStats). */
  preparedReads(): number;
  /** The handle cache's descriptor budget. */
  readonly descriptorBudget: number;
  /** Statements run by this process (storage's process-wide counter). */
  statementsExecuted(): number;
  /** Catalogued instances by state and schema version: one GROUP BY on the catalog. */
  instanceCounts(): ReadonlyArray<{ state: string; schema_version: number; count: number }>;
  /** Rollouts holding instances, by state (every such state, 0 included), and their instances still to do. */
  rolloutOverview(): { rollouts: Readonly<Record<string, number>>; remaining: Readonly<Record<string, number>> };
}

const seconds = (ms: number): number => ms / 1000;

/**
 * fleetql's Prometheus metrics, in a registry of their own (several servers in one process, as in
 * tests, never share counters), with Node's default process metrics beside them. Events arrive
 * through the narrow observer methods below; levels (cache, catalog, rollouts) are read on scrape.
 * Labels are bounded: operation types, error codes, states, versions, routes — never an instance
 * id, a query text or an operation name.
 */
export class FleetqlMetrics implements FanOutObserver, RolloutObserver, ArchiveObserver {
  readonly registry = new Registry();
  #sources: MetricsSources | undefined;

  readonly #graphqlDuration = new Histogram({
    name: 'fleetql_graphql_request_duration_seconds',
    help: 'GraphQL requests from arrival to the end of the response (of the stream, for a subscription), by operation type and outcome (error when the result has any error).',
    labelNames: ['operation_type', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly #graphqlErrors = new Counter({
    name: 'fleetql_graphql_errors_total',
    help: 'Errors in GraphQL responses (per-instance fleet errors included), by operation type and extensions.code; unknown codes count as INTERNAL.',
    labelNames: ['operation_type', 'code'],
    registers: [this.registry],
  });
  readonly #httpInFlight = new Gauge({
    name: 'fleetql_http_requests_in_flight',
    help: 'HTTP requests being handled (a subscription stream counts until it ends).',
    registers: [this.registry],
  });
  readonly #httpRequests = new Counter({
    name: 'fleetql_http_requests_total',
    help: 'HTTP requests answered, by route (/graphql, /healthz, /readyz, /metrics or other) and status code.',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });
  readonly #fanOutWidth = new Histogram({
    name: 'fleetql_fleet_fanout_width',
    help: 'Instances one fleet field fanned out to (after pruning through the catalog), by field kind.',
    labelNames: ['field'],
    buckets: [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000],
    registers: [this.registry],
  });
  readonly #fanOutDuration = new Histogram({
    name: 'fleetql_fleet_fanout_duration_seconds',
    help: 'Time one fleet field took to fan out and collect every instance, by field kind.',
    labelNames: ['field'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly #fanOutFailures = new Counter({
    name: 'fleetql_fleet_instance_failures_total',
    help: 'Instances that failed inside a fleet fan-out, by error code.',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly #rolloutInstances = new Counter({
    name: 'fleetql_rollout_instances_total',
    help: 'Instances a rollout (kind forward or rollback) settled, by outcome: done, failed or skipped.',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });
  readonly #rolloutFailures = new Counter({
    name: 'fleetql_rollout_instance_failures_total',
    help: 'Instances a rollout failed to move, by error code.',
    labelNames: ['kind', 'code'],
    registers: [this.registry],
  });
  readonly #archiveDuration = new Histogram({
    name: 'fleetql_archive_operation_duration_seconds',
    help: 'Archive operations (archive, retire, destroy with archive, restore) by outcome; the _count series counts them.',
    labelNames: ['operation', 'outcome'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly #archiveFailures = new Counter({
    name: 'fleetql_archive_failures_total',
    help: 'Archive operations that failed, by operation and error code.',
    labelNames: ['operation', 'code'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const metrics = this;
    const read = <T>(pick: (sources: MetricsSources) => T): T | undefined => (metrics.#sources === undefined ? undefined : pick(metrics.#sources));
    /** A counter whose total another subsystem keeps: set to that total on every scrape. */
    const mirroredCounter = (name: string, help: string, value: (sources: MetricsSources) => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const total = read(value);
          if (total === undefined) return;
          this.reset();
          this.inc(total);
        },
      });
    const mirroredGauge = (name: string, help: string, value: (sources: MetricsSources) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const level = read(value);
          if (level !== undefined) this.set(level);
        },
      });

    mirroredGauge('fleetql_handle_cache_open_handles', 'Instance files the handle cache holds open.', (s) => s.cacheStats().open);
    mirroredGauge(
      'fleetql_handle_cache_descriptors',
      'Descriptors counted against the handle cache budget: those of open handles plus those of closed handles the driver has not released yet.',
      (s) => {
        const stats = s.cacheStats();
        return stats.descriptors + stats.pendingDescriptors;
      },
    );
    mirroredGauge('fleetql_handle_cache_unreleased_descriptors', 'Descriptors of closed handles not yet released by the driver (process-wide; released by a garbage collection).', (s) => s.cacheStats().pendingDescriptors);
    mirroredGauge('fleetql_handle_cache_descriptor_budget', 'The handle cache descriptor budget (FLEETQL_MAX_OPEN_DESCRIPTORS).', (s) => s.descriptorBudget);
    mirroredCounter('fleetql_handle_cache_hits_total', 'Instance handle requests served by an open handle.', (s) => s.cacheStats().hits);
    mirroredCounter('fleetql_handle_cache_misses_total', 'Instance handle requests that opened the file.', (s) => s.cacheStats().misses);
    mirroredCounter('fleetql_handle_cache_evictions_total', 'Instance handles closed by the cache (budget, or the instance retired, restored or migrated aside).', (s) => s.cacheStats().evictions);
    mirroredCounter('fleetql_fleet_prepared_reads_total', 'Fan-out reads run as an earlier asking of the same question prepared them, over the same selection with no handle closed since (also counted as handle cache hits).', (s) => s.preparedReads());
    mirroredCounter('fleetql_statements_executed_total', 'SQL statements executed on catalog and instance files (process-wide).', (s) => s.statementsExecuted());

    new Gauge({
      name: 'fleetql_instances',
      help: 'Catalogued instances by state and schema version (read from the catalog on scrape).',
      labelNames: ['state', 'schema_version'],
      registers: [this.registry],
      collect() {
        const counts = read((s) => s.instanceCounts());
        if (counts === undefined) return;
        // A state or version that emptied must drop out, not keep its last value.
        this.reset();
        for (const { state, schema_version, count } of counts) this.set({ state, schema_version: String(schema_version) }, count);
      },
    });
    new Gauge({
      name: 'fleetql_rollouts',
      help: 'Rollouts holding instances (PENDING, RUNNING, PAUSED, FAILED), by state.',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const byState = read((s) => s.rolloutOverview().rollouts);
        for (const [state, count] of Object.entries(byState ?? {})) this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'fleetql_rollout_instances_remaining',
      help: 'Instances still to move in rollouts holding instances, by the rollout state.',
      labelNames: ['rollout_state'],
      registers: [this.registry],
      collect() {
        const byState = read((s) => s.rolloutOverview().remaining);
        for (const [state, count] of Object.entries(byState ?? {})) this.set({ rollout_state: state }, count);
      },
    });
  }

  /** The services to read on scrape once they exist (the server starts before they do); undefined once they are closed. */
  attach(sources: MetricsSources | undefined): void {
    this.#sources = sources;
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  httpRequestStarted(): void {
    this.#httpInFlight.inc();
  }

  httpRequestFinished(pathname: string, status: number): void {
    this.#httpInFlight.dec();
    this.#httpRequests.inc({ route: routeLabel(pathname), status: String(status) });
  }

  /** One GraphQL request: its operation type (undefined when unknown), duration and error codes. */
  graphqlRequest(operationType: string | undefined, durationMs: number, errorCodes: readonly unknown[]): void {
    const operation_type = operationTypeLabel(operationType);
    this.#graphqlDuration.observe({ operation_type, outcome: errorCodes.length === 0 ? 'ok' : 'error' }, seconds(durationMs));
    for (const code of errorCodes) this.#graphqlErrors.inc({ operation_type, code: codeLabel(code) });
  }

  /** fleet/ FanOutObserver: one fleet field's fan-out. */
  fanOutDone(report: { field: FleetFieldKind; targets: number; durationMs: number; failureCodes: readonly string[] }): void {
    this.#fanOutWidth.observe({ field: report.field }, report.targets);
    this.#fanOutDuration.observe({ field: report.field }, seconds(report.durationMs));
    for (const code of report.failureCodes) this.#fanOutFailures.inc({ code: codeLabel(code) });
  }

  /** rollouts/ RolloutObserver: one instance of a rollout settled. */
  rolloutInstanceSettled(kind: 'forward' | 'rollback', outcome: 'done' | 'failed' | 'skipped', code?: string): void {
    this.#rolloutInstances.inc({ kind, outcome });
    if (outcome === 'failed') this.#rolloutFailures.inc({ kind, code: codeLabel(code) });
  }

  /** archive/ ArchiveObserver: one archive operation ended (code undefined when it succeeded). */
  archiveOperationDone(operation: ArchiveOperation, durationMs: number, code?: string): void {
    this.#archiveDuration.observe({ operation, outcome: code === undefined ? 'ok' : 'error' }, seconds(durationMs));
    if (code !== undefined) this.#archiveFailures.inc({ operation, code: codeLabel(code) });
  }
}
