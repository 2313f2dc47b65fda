import os from 'node:os';
import path from 'node:path';
import { FleetqlError } from '../errors.js';
import { logLevels, type LogLevel } from '../logger.js';
import { expandSecurity, securityOptionsFromEnv, type SecurityConfig, type SecurityOptions } from './security.js';

export type JournalMode = 'delete' | 'wal';

/**
 * What a user may give: every field optional, each documented once, here.
 * Command-line flags and environment variables both map onto this shape.
 */
export interface FleetqlOptions extends SecurityOptions {
  /**
   * Interface to bind. Anonymous access is meant for loopback only.
   * @default "127.0.0.1"   env FLEETQL_HOST, flag --host
   */
  host?: string;
  /**
   * TCP port; 0 picks a free one (the ready line prints the real port).
   * @default 4000   env FLEETQL_PORT, flag --port
   */
  port?: number;
  /**
   * Directory holding the catalog (`catalog.db`), the instance files (`instances/`) and archives.
   * @default "./data"   env FLEETQL_DATA, flag --data
   */
  dataDir?: string;
  /**
   * Directory of ordered SQL migration files (`0001_name.sql`) that define every instance's schema.
   * @default "./migrations"   env FLEETQL_MIGRATIONS, flag --migrations
   */
  migrationsDir?: string;
  /**
   * Seed a small demo fleet when the data directory is new (has no catalog yet).
   * @default true   env FLEETQL_DEMO=false, flag --no-demo
   */
  demo?: boolean;
  /**
   * Journal mode of instance files. `delete` (rollback journal) holds one descriptor per open
   * instance and makes a cold first read several times cheaper than `wal`, which holds three
   * (db, -wal, -shm) but lets readers run beside a writer. See bench/RESULTS.md for the figures.
   * @default "delete"   env FLEETQL_JOURNAL_MODE
   */
  journalMode?: JournalMode;
  /**
   * Budget of file descriptors the instance handle cache may hold, counting handles that were
   * closed but whose native resources are not yet released. Keep it well under `ulimit -n`.
   * @default 4096   env FLEETQL_MAX_OPEN_DESCRIPTORS
   */
  maxOpenDescriptors?: number;
  /**
   * How long a statement waits for a lock held by another connection before failing.
   * @default 5000   env FLEETQL_BUSY_TIMEOUT_MS
   */
  busyTimeoutMs?: number;
  /**
   * On SIGTERM/SIGINT, how long in-flight requests may take to finish before connections are cut.
   * @default 10000   env FLEETQL_SHUTDOWN_TIMEOUT_MS
   */
  shutdownTimeoutMs?: number;
  /**
   * Serve GraphiQL at the GraphQL endpoint for browsers.
   * @default true in development, false in production   env FLEETQL_GRAPHIQL
   */
  graphiql?: boolean;
  /**
   * Least severe log line written (JSON lines on stderr): `debug`, `info` (one access line per
   * request), `warn`, `error` or `silent`.
   * @default "info"   env FLEETQL_LOG_LEVEL, flag --log-level
   */
  logLevel?: LogLevel;
  /**
   * Serve Prometheus metrics at `/metrics` (outside GraphQL authentication: see README, Metrics).
   * @default true   env FLEETQL_METRICS
   */
  metrics?: boolean;
  /**
   * Serve `/metrics` on this port of the same host instead of the main listener (0 picks a free
   * one); unset means the main listener.
   * @default unset   env FLEETQL_METRICS_PORT
   */
  metricsPort?: number;
  /**
   * Instance tasks a fleet query keeps in flight when the query does not say (`concurrency`).
   * @default 8   env FLEETQL_FLEET_CONCURRENCY
   */
  fleetConcurrency?: number;
  /**
   * The most a fleet query may ask for with `concurrency`.
   * @default 64   env FLEETQL_FLEET_MAX_CONCURRENCY
   */
  fleetMaxConcurrency?: number;
  /**
   * Per-instance time of a fleet query when it does not say (`timeout_ms`); slower instances are
   * reported INSTANCE_TIMEOUT.
   * @default 5000   env FLEETQL_FLEET_INSTANCE_TIMEOUT_MS
   */
  fleetInstanceTimeoutMs?: number;
  /**
   * Deadline of one fleet field: instances not reached by then are reported INSTANCE_TIMEOUT.
   * @default 30000   env FLEETQL_FLEET_DEADLINE_MS
   */
  fleetDeadlineMs?: number;
  /**
   * Most instances × fleet fields one `fleet(...)` may fan out to; beyond it, QUERY_TOO_COSTLY
   * before any instance is opened.
   * @default 1000000   env FLEETQL_FLEET_MAX_COST
   */
  fleetMaxCost?: number;
  /**
   * How long a finished rollout keeps its pre-migration snapshots (for rollback_rollout).
   * @default 86400000 (one day)   env FLEETQL_ROLLOUT_SNAPSHOT_RETENTION_MS
   */
  rolloutSnapshotRetentionMs?: number;
  /**
   * Lazy migrations: an instance behind the head migration is migrated on its first access, before
   * the request is served (otherwise instances move only by rollouts).
   * @default false   env FLEETQL_LAZY_MIGRATIONS
   */
  lazyMigrations?: boolean;
  /**
   * Worker threads that run migrations and rollbacks (snapshot, the migration's transaction, the
   * fsyncs), so requests keep being served on the main thread during a rollout; 0 runs them on the
   * main thread. The work waits on fsync more than it computes, so threads beyond the cores add:
   * on 2 cores a rollout of 1,000 instances ran at 338–362 instances/s on 2 threads, 353–432 on 4
   * and 319–401 on 8 (three rounds each, /work/prof/plain/roll.mjs, 2026-12-02). Idle workers end
   * after 10 s.
   * @default two per core, at least 4, at most 8   env FLEETQL_MIGRATION_THREADS
   */
  migrationThreads?: number;
  /**
   * Where archives go: `file` (a directory, `<data>/archives` unless FLEETQL_ARCHIVE_DIR says) or
   * `s3` (any S3-compatible store; see the s3 fields).
   * @default "file"   env FLEETQL_ARCHIVE_STORE
   */
  archiveStore?: 'file' | 's3';
  /** @default "<data>/archives"   env FLEETQL_ARCHIVE_DIR */
  archiveDir?: string;
  /** Bucket of the S3 archive store (required with archiveStore s3).   env FLEETQL_S3_BUCKET */
  s3Bucket?: string;
  /** Key prefix in the bucket. @default ""   env FLEETQL_S3_PREFIX */
  s3Prefix?: string;
  /** Endpoint of an S3-compatible store (MinIO, R2…); unset means AWS.   env FLEETQL_S3_ENDPOINT */
  s3Endpoint?: string;
  /** @default "us-east-1"   env FLEETQL_S3_REGION */
  s3Region?: string;
  /** Credentials; unset means the AWS SDK's default chain.   env FLEETQL_S3_ACCESS_KEY_ID, FLEETQL_S3_SECRET_ACCESS_KEY */
  s3AccessKeyId?: string;
  s3SecretAccessKey?: string;
  /** Per request to the archive store. @default 30000   env FLEETQL_ARCHIVE_TIMEOUT_MS */
  archiveTimeoutMs?: number;
}

/** The resolved configuration: complete, validated, frozen. Made only by `expandConfig`. */
export interface FleetqlConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly catalogPath: string;
  readonly instancesDir: string;
  readonly archivesDir: string;
  readonly snapshotsDir: string;
  readonly migrationsDir: string;
  readonly demo: boolean;
  readonly journalMode: JournalMode;
  readonly maxOpenDescriptors: number;
  readonly busyTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  readonly graphiql: boolean;
  readonly logLevel: LogLevel;
  readonly metrics: boolean;
  readonly metricsPort: number | undefined;
  readonly fleetConcurrency: number;
  readonly fleetMaxConcurrency: number;
  readonly fleetInstanceTimeoutMs: number;
  readonly fleetDeadlineMs: number;
  readonly fleetMaxCost: number;
  readonly rolloutSnapshotRetentionMs: number;
  readonly lazyMigrations: boolean;
  readonly migrationThreads: number;
  readonly archiveStore: 'file' | 's3';
  readonly s3: { readonly bucket: string; readonly prefix: string; readonly endpoint: string | undefined; readonly region: string; readonly accessKeyId: string | undefined; readonly secretAccessKey: string | undefined };
  readonly archiveTimeoutMs: number;
  /** Mode, credentials, exposure and request limits (see security.ts). */
  readonly security: SecurityConfig;
}

export const defaults = {
  host: '127.0.0.1',
  port: 4000,
  dataDir: './data',
  migrationsDir: './migrations',
  demo: true,
  journalMode: 'delete',
  maxOpenDescriptors: 4096,
  busyTimeoutMs: 5000,
  shutdownTimeoutMs: 10_000,
  logLevel: 'info',
  metrics: true,
  fleetConcurrency: 8,
  fleetMaxConcurrency: 64,
  fleetInstanceTimeoutMs: 5000,
  fleetDeadlineMs: 30_000,
  fleetMaxCost: 1_000_000,
  rolloutSnapshotRetentionMs: 86_400_000,
  lazyMigrations: false,
  migrationThreads: Math.max(4, Math.min(8, 2 * os.availableParallelism())),
  archiveStore: 'file',
  s3Region: 'us-east-1',
  archiveTimeoutMs: 30_000,
} as const satisfies Omit<Required<FleetqlOptions>, 'graphiql' | keyof SecurityOptions | 'metricsPort' | 'archiveDir' | 's3Bucket' | 's3Prefix' | 's3Endpoint' | 's3AccessKeyId' | 's3SecretAccessKey'>;

function invalid(message: string): FleetqlError {
  return new FleetqlError('CONFIG_INVALID', message);
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Fills defaults, validates every field and freezes the result; fails early with CONFIG_INVALID. */
export function expandConfig(options: FleetqlOptions = {}): FleetqlConfig {
  const dataDir = path.resolve(options.dataDir ?? defaults.dataDir);
  const journalMode = options.journalMode ?? defaults.journalMode;
  if (journalMode !== 'delete' && journalMode !== 'wal') throw invalid(`journalMode must be "delete" or "wal", got "${String(journalMode)}"`);
  const archiveStore = options.archiveStore ?? defaults.archiveStore;
  if (archiveStore !== 'file' && archiveStore !== 's3') throw invalid(`archiveStore must be "file" or "s3", got "${String(archiveStore)}"`);
  if (archiveStore === 's3' && !options.s3Bucket) throw invalid('the s3 archive store needs a bucket (FLEETQL_S3_BUCKET)');
  const host = options.host ?? defaults.host;
  if (host.length === 0) throw invalid('host must not be empty');
  if (options.metricsPort !== undefined && options.metricsPort !== 0 && options.metricsPort === (options.port ?? defaults.port)) throw invalid('metricsPort must differ from port (unset it to serve /metrics on the API port)');
  const logLevel = options.logLevel ?? defaults.logLevel;
  if (!logLevels.includes(logLevel)) throw invalid(`logLevel must be one of ${logLevels.join(', ')}, got "${String(logLevel)}"`);
  const security = expandSecurity(options);
  return Object.freeze({
    host,
    port: integerIn('port', options.port ?? defaults.port, 0, 65535),
    dataDir,
    catalogPath: path.join(dataDir, 'catalog.db'),
    instancesDir: path.join(dataDir, 'instances'),
    archivesDir: path.resolve(options.archiveDir ?? path.join(dataDir, 'archives')),
    snapshotsDir: path.join(dataDir, 'snapshots'),
    migrationsDir: path.resolve(options.migrationsDir ?? defaults.migrationsDir),
    demo: options.demo ?? defaults.demo,
    journalMode,
    maxOpenDescriptors: integerIn('maxOpenDescriptors', options.maxOpenDescriptors ?? defaults.maxOpenDescriptors, 8, 1_000_000),
    busyTimeoutMs: integerIn('busyTimeoutMs', options.busyTimeoutMs ?? defaults.busyTimeoutMs, 0, 600_000),
    shutdownTimeoutMs: integerIn('shutdownTimeoutMs', options.shutdownTimeoutMs ?? defaults.shutdownTimeoutMs, 0, 600_000),
    graphiql: options.graphiql ?? security.mode === 'development',
    logLevel,
    metrics: options.metrics ?? defaults.metrics,
    metricsPort: options.metricsPort === undefined ? undefined : integerIn('metricsPort', options.metricsPort, 0, 65535),
    fleetMaxConcurrency: integerIn('fleetMaxConcurrency', options.fleetMaxConcurrency ?? defaults.fleetMaxConcurrency, 1, 1024),
    fleetConcurrency: integerIn('fleetConcurrency', options.fleetConcurrency ?? defaults.fleetConcurrency, 1, options.fleetMaxConcurrency ?? defaults.fleetMaxConcurrency),
    fleetInstanceTimeoutMs: integerIn('fleetInstanceTimeoutMs', options.fleetInstanceTimeoutMs ?? defaults.fleetInstanceTimeoutMs, 1, 3_600_000),
    fleetDeadlineMs: integerIn('fleetDeadlineMs', options.fleetDeadlineMs ?? defaults.fleetDeadlineMs, 1, 3_600_000),
    fleetMaxCost: integerIn('fleetMaxCost', options.fleetMaxCost ?? defaults.fleetMaxCost, 1, Number.MAX_SAFE_INTEGER),
    lazyMigrations: options.lazyMigrations ?? defaults.lazyMigrations,
    migrationThreads: integerIn('migrationThreads', options.migrationThreads ?? defaults.migrationThreads, 0, 64),
    archiveStore,
    s3: Object.freeze({
      bucket: options.s3Bucket ?? '',
      prefix: options.s3Prefix ?? '',
      endpoint: options.s3Endpoint,
      region: options.s3Region ?? defaults.s3Region,
      accessKeyId: options.s3AccessKeyId,
      secretAccessKey: options.s3SecretAccessKey,
    }),
    archiveTimeoutMs: integerIn('archiveTimeoutMs', options.archiveTimeoutMs ?? defaults.archiveTimeoutMs, 1, 3_600_000),
    rolloutSnapshotRetentionMs: integerIn('rolloutSnapshotRetentionMs', options.rolloutSnapshotRetentionMs ?? defaults.rolloutSnapshotRetentionMs, 0, Number.MAX_SAFE_INTEGER),
    security,
  });
}

function parseBoolean(name: string, raw: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw invalid(`${name} must be true or false, got "${raw}"`);
}

function parseInteger(name: string, raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw invalid(`${name} must be a whole number, got "${raw}"`);
  return Number(raw);
}

/** Reads the FLEETQL_* environment variables; unset or empty ones are left out. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): FleetqlOptions {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const options: FleetqlOptions = securityOptionsFromEnv(get, parseInteger, parseBoolean);
  let raw: string | undefined;
  if ((raw = get('FLEETQL_HOST')) !== undefined) options.host = raw;
  if ((raw = get('FLEETQL_PORT')) !== undefined) options.port = parseInteger('FLEETQL_PORT', raw);
  if ((raw = get('FLEETQL_DATA')) !== undefined) options.dataDir = raw;
  if ((raw = get('FLEETQL_MIGRATIONS')) !== undefined) options.migrationsDir = raw;
  if ((raw = get('FLEETQL_DEMO')) !== undefined) options.demo = parseBoolean('FLEETQL_DEMO', raw);
  if ((raw = get('FLEETQL_JOURNAL_MODE')) !== undefined) options.journalMode = raw as JournalMode;
  if ((raw = get('FLEETQL_MAX_OPEN_DESCRIPTORS')) !== undefined) options.maxOpenDescriptors = parseInteger('FLEETQL_MAX_OPEN_DESCRIPTORS', raw);
  if ((raw = get('FLEETQL_BUSY_TIMEOUT_MS')) !== undefined) options.busyTimeoutMs = parseInteger('FLEETQL_BUSY_TIMEOUT_MS', raw);
  if ((raw = get('FLEETQL_SHUTDOWN_TIMEOUT_MS')) !== undefined) options.shutdownTimeoutMs = parseInteger('FLEETQL_SHUTDOWN_TIMEOUT_MS', raw);
  if ((raw = get('FLEETQL_GRAPHIQL')) !== undefined) options.graphiql = parseBoolean('FLEETQL_GRAPHIQL', raw);
  if ((raw = get('FLEETQL_LOG_LEVEL')) !== undefined) options.logLevel = raw as LogLevel;
  if ((raw = get('FLEETQL_METRICS')) !== undefined) options.metrics = parseBoolean('FLEETQL_METRICS', raw);
  if ((raw = get('FLEETQL_METRICS_PORT')) !== undefined) options.metricsPort = parseInteger('FLEETQL_METRICS_PORT', raw);
  if ((raw = get('FLEETQL_FLEET_CONCURRENCY')) !== undefined) options.fleetConcurrency = parseInteger('FLEETQL_FLEET_CONCURRENCY', raw);
  if ((raw = get('FLEETQL_FLEET_MAX_CONCURRENCY')) !== undefined) options.fleetMaxConcurrency = parseInteger('FLEETQL_FLEET_MAX_CONCURRENCY', raw);
  if ((raw = get('FLEETQL_FLEET_INSTANCE_TIMEOUT_MS')) !== undefined) options.fleetInstanceTimeoutMs = parseInteger('FLEETQL_FLEET_INSTANCE_TIMEOUT_MS', raw);
  if ((raw = get('FLEETQL_FLEET_DEADLINE_MS')) !== undefined) options.fleetDeadlineMs = parseInteger('FLEETQL_FLEET_DEADLINE_MS', raw);
  if ((raw = get('FLEETQL_FLEET_MAX_COST')) !== undefined) options.fleetMaxCost = parseInteger('FLEETQL_FLEET_MAX_COST', raw);
  if ((raw = get('FLEETQL_ARCHIVE_STORE')) !== undefined) options.archiveStore = raw as 'file' | 's3';
  if ((raw = get('FLEETQL_ARCHIVE_DIR')) !== undefined) options.archiveDir = raw;
  if ((raw = get('FLEETQL_S3_BUCKET')) !== undefined) options.s3Bucket = raw;
  if ((raw = get('FLEETQL_S3_PREFIX')) !== undefined) options.s3Prefix = raw;
  if ((raw = get('FLEETQL_S3_ENDPOINT')) !== undefined) options.s3Endpoint = raw;
  if ((raw = get('FLEETQL_S3_REGION')) !== undefined) options.s3Region = raw;
  if ((raw = get('FLEETQL_S3_ACCESS_KEY_ID')) !== undefined) options.s3AccessKeyId = raw;
  if ((raw = get('FLEETQL_S3_SECRET_ACCESS_KEY')) !== undefined) options.s3SecretAccessKey = raw;
  if ((raw = get('FLEETQL_ARCHIVE_TIMEOUT_MS')) !== undefined) options.archiveTimeoutMs = parseInteger('FLEETQL_ARCHIVE_TIMEOUT_MS', raw);
  if ((raw = get('FLEETQL_LAZY_MIGRATIONS')) !== undefined) options.lazyMigrations = parseBoolean('FLEETQL_LAZY_MIGRATIONS', raw);
  if ((raw = get('FLEETQL_MIGRATION_THREADS')) !== undefined) options.migrationThreads = parseInteger('FLEETQL_MIGRATION_THREADS', raw);
  if ((raw = get('FLEETQL_ROLLOUT_SNAPSHOT_RETENTION_MS')) !== undefined) options.rolloutSnapshotRetentionMs = parseInteger('FLEETQL_ROLLOUT_SNAPSHOT_RETENTION_MS', raw);
  return options;
}
