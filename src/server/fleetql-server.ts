import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServerAdapter } from '@whatwg-node/server';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { Authenticator, scopeOf, type Principal } from '../auth/index.js';
import { LibsqlCatalog, type Catalog } from '../catalog/index.js';
import type { FleetqlConfig } from '../config/index.js';
import { seedDemoFleet } from '../demo/index.js';
import { FleetqlError } from '../errors.js';
import { InstanceService, instanceSettings, ScopedInstances } from '../instances/index.js';
import { loadMigrations, verifyAgainstCatalog, type MigrationSet } from '../migrations/index.js';
import { DataService, RelationshipLoaders } from '../data/index.js';
import { ArchiveService, FileArchiveStore, S3ArchiveStore, type ArchiveStore } from '../archive/index.js';
import { FleetService, RecentQuestions } from '../fleet/index.js';
import { RolloutService } from '../rollouts/index.js';
import { schemaForMigrations, type Context } from '../schema/index.js';
import { createLogger, type Logger } from '../logger.js';
import { FleetqlMetrics } from '../metrics/index.js';
import { storageStats } from '../storage/index.js';
import { createMaskError } from './mask-error.js';
import { useErrorCodes } from './use-error-codes.js';
import { useExtraErrors } from './use-extra-errors.js';
import { useInputDepthLimit } from './use-input-depth-limit.js';
import { metricsPath, metricsResponse } from './metrics-endpoint.js';
import { createRequestGate, useRequestGate, type GateContext } from './request-gate.js';
import { pathOf, requestIdOf, scoped, useRequestScope, withRequestId, type Route } from './request-scope.js';
import { securityOptions, securityPlugins } from './security-plugins.js';

export const graphqlEndpoint = '/graphql';
/** Deepest nesting a document or its variables may have (filters need ~2 levels per _and/_or). */
const maxInputDepth = 300;

/** A Node request listener; fleetql never listens by itself. */
export type FleetqlHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** A fetch route as a Node request listener (for the small adapters beside GraphQL). */
function listenerOf(route: (request: Request, context: { res?: ServerResponse }) => Promise<Response>): FleetqlHandler {
  const adapter = createServerAdapter<{ res?: ServerResponse }>(route);
  return (req, res) => void adapter(req, res);
}

/** Answers requests that GraphQL's own handling never sees (probes), or leaves them to it. */
function useProbes(probe: (request: Request) => Promise<Response> | undefined): Plugin {
  return {
    onRequest({ request, endResponse }) {
      return probe(request)?.then(endResponse);
    },
  };
}

export interface FleetqlServer {
  /** Every route: GraphQL, GraphiQL, /healthz, /readyz and /metrics (unless it has its own port). */
  readonly handler: FleetqlHandler;
  /** Resolves once the catalog is open, migrations are loaded and interrupted operations are settled. */
  readonly ready: Promise<void>;
  /** The instance service, once ready (for the CLI and tests in the same process). */
  readonly instances: () => InstanceService;
  /** The rollout service, once ready. */
  readonly rollouts: () => RolloutService;
  /** Serves only `/metrics`, for a listener of its own (config.metricsPort); undefined unless configured. */
  readonly metricsHandler: FleetqlHandler | undefined;
  /** Closes instance handles (after their current users) and the catalog. Stop accepting requests first. */
  close(): Promise<void>;
}

interface Started {
  rollouts: RolloutService;
  catalog: Catalog;
  instances: InstanceService;
  migrations: MigrationSet;
  yoga: YogaServerInstance<GateContext, Context>;
}

function createArchiveStore(config: FleetqlConfig): ArchiveStore {
  if (config.archiveStore === 'file') return new FileArchiveStore(config.archivesDir);
  return new S3ArchiveStore({ ...config.s3, timeoutMs: config.archiveTimeoutMs });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/**
 * Builds fleetql for one configuration. `/healthz` answers while the process lives; `/readyz`
 * and GraphQL answer 503 until startup is done, so a listener can be bound first.
 */
export function createFleetqlServer(config: FleetqlConfig, options: { logger?: Logger } = {}): FleetqlServer {
  const logger = withRequestId(options.logger ?? createLogger(config.logLevel));
  const metrics = config.metrics ? new FleetqlMetrics() : undefined;
  let started: Started | undefined;
  let closing = false;
  const authenticator = new Authenticator(config.security, config.host);
  const gate = createRequestGate({ security: config.security, authenticator, graphiql: config.graphiql, logger });
  const scope = { logger, metrics };
  // Probes and /metrics are answered before GraphQL and its authentication, and also while fleetql
  // is starting or closing.
  const probe = (request: Request): Promise<Response> | undefined => {
    const path = pathOf(request);
    if (path === '/healthz') return Promise.resolve(json(200, { status: 'ok' }));
    if (path === '/readyz') return Promise.resolve(started && !closing ? json(200, { status: 'ready' }) : json(503, { status: closing ? 'closing' : 'starting' }));
    if (path === metricsPath && metrics !== undefined && config.metricsPort === undefined) return metricsResponse(metrics, request);
    return undefined;
  };
  if (!authenticator.anonymousAllowed && config.security.mode === 'development') {
    logger.warn('development mode bound to a non-loopback address: anonymous requests are refused, credentials are required', { host: config.host });
  }

  const ready = (async () => {
    fs.mkdirSync(config.dataDir, { recursive: true });
    const isNewDataDir = !fs.existsSync(config.catalogPath);
    const migrations = loadMigrations(config.migrationsDir);
    const catalog = LibsqlCatalog.open(config.catalogPath, { busyTimeoutMs: config.busyTimeoutMs });
    try {
      verifyAgainstCatalog(migrations, catalog);
      const instances = new InstanceService({
        catalog,
        migrations,
        ...instanceSettings(config),
        onLazyMigrationFailure: (instanceId, error) => logger.warn('lazy migration failed; serving the instance at its version', { instance_id: instanceId, error }),
      });
      const recovered = await instances.recover();
      if (Object.values(recovered).some((ids) => ids.length > 0)) {
        logger.warn('settled operations a previous run left unfinished', { ...recovered });
      }
      if (isNewDataDir && config.demo) {
        const seeded = await seedDemoFleet(instances);
        logger.info('seeded the demo fleet', { ...seeded });
      }
      const { schema, model } = schemaForMigrations(migrations);
      const archives = new ArchiveService({ store: createArchiveStore(config), catalog, instances, observer: metrics });
      const rollouts = new RolloutService({ catalog, instances, head: migrations.head, logger, snapshotRetentionMs: config.rolloutSnapshotRetentionMs, observer: metrics });
      const fleetLimits = {
        concurrencyDefault: config.fleetConcurrency,
        concurrencyMax: config.fleetMaxConcurrency,
        instanceTimeoutMs: config.fleetInstanceTimeoutMs,
        deadlineMs: config.fleetDeadlineMs,
        maxCost: config.fleetMaxCost,
      };
      const recentQuestions = new RecentQuestions();
      // Per request: the principal's view of the instances, the data and fleet services over it, and
      // the rest of the context, as one object literal: spreading the services into the context
      // cost about 20 µs of CPU per request (profiled under single reads; 0.9 µs as one literal).
      const contextFor = (request: Request, principal: Principal | undefined): Context => {
        const view = new ScopedInstances(instances, principal === undefined ? { instances: { ids: [] }, write: false, lifecycle: false } : scopeOf(principal));
        const data = new DataService(model, view);
        return {
          instances: view,
          data,
          fleet: new FleetService(data, view, fleetLimits, metrics, recentQuestions),
          loaders: new RelationshipLoaders(data),
          migrations,
          rollouts,
          archives,
          extraErrors: [],
          requestId: requestIdOf(request),
          signal: request.signal,
        };
      };
      const yoga = createYoga<GateContext, Context>({
        schema,
        graphqlEndpoint,
        graphiql: config.graphiql ? { title: 'fleetql', defaultQuery: demoQuery } : false,
        // GraphiQL's assets are served by fleetql itself: no CDN, so it works offline and air-gapped.
        renderGraphiQL,
        landingPage: false,
        logging: false,
        // The request gate bounds every body (FLEETQL_MAX_BODY_BYTES) before Yoga sees it; Yoga's own
        // limit would pipe each body through one more stream and rebuild the request.
        maxRequestBodySize: false,
        maskedErrors: { maskError: createMaskError(logger) },
        ...securityOptions(config.security),
        // One adapter, Yoga's: the probes, the gate and the request scope are plugins of it.
        plugins: [useProbes(probe), useRequestGate(gate), useInputDepthLimit(maxInputDepth), ...securityPlugins(config.security), useExtraErrors(), useErrorCodes(), useRequestScope(scope)],
        context: ({ request, principal }) => contextFor(request, principal),
      });
      started = { catalog, instances, migrations, yoga, rollouts };
      metrics?.attach({
        cacheStats: () => instances.cacheStats(),
        descriptorBudget: config.maxOpenDescriptors,
        statementsExecuted: () => storageStats.statementsExecuted,
        preparedReads: () => instances.preparedReadStats().hits,
        instanceCounts: () => catalog.countByStateAndVersion(),
        rolloutOverview: () => catalog.rollouts.overview(),
      });
      rollouts.resumeInterrupted();
      logger.info('ready', { migrations_head: migrations.head, data: config.dataDir });
    } catch (error) {
      catalog.close();
      throw error;
    }
  })();
  // Startup failures surface through `ready`; this keeps them from also being unhandled.
  ready.catch(() => undefined);

  const unavailable: Route = async (request) => {
    const error = new FleetqlError('SERVICE_UNAVAILABLE', closing ? 'fleetql is shutting down' : 'fleetql is starting');
    return (await probe(request)) ?? json(503, { errors: [{ message: error.message, extensions: { code: error.code } }] });
  };
  const notServing = listenerOf(scoped(unavailable, scope));
  const handler: FleetqlHandler = (req, res) => {
    if (started === undefined || closing) notServing(req, res);
    else void started.yoga(req, res);
  };
  const metricsOnly: Route = async (request) =>
    metrics !== undefined && pathOf(request) === metricsPath ? metricsResponse(metrics, request) : new Response('not found\n', { status: 404 });

  return {
    handler,
    metricsHandler: metrics !== undefined && config.metricsPort !== undefined ? listenerOf(scoped(metricsOnly, scope)) : undefined,
    ready,
    instances: () => {
      if (started === undefined) throw new Error('fleetql is not ready');
      return started.instances;
    },
    rollouts: () => {
      if (started === undefined) throw new Error('fleetql is not ready');
      return started.rollouts;
    },
    async close() {
      closing = true;
      await ready.catch(() => undefined);
      if (started === undefined) return;
      metrics?.attach(undefined);
      await started.rollouts.close();
      await started.instances.close();
      started.catalog.close();
      started = undefined;
    },
  };
}

const demoQuery = `# Welcome to fleetql: one libSQL database per instance, served as one GraphQL API.
query Fleet {
  instances(where: { labels: { _contains: { org: "acme" } } }, order_by: [{ id: asc }], limit: 5) {
    id
    labels
    state
    schema_version
    size_bytes
  }
  migrations {
    version
    name
    instances
  }
}
`;
