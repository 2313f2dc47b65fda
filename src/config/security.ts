import fs from 'node:fs';
import { FleetqlError } from '../errors.js';

export type Mode = 'development' | 'production';
export type Role = 'admin' | 'service' | 'tenant';
export const roles: readonly Role[] = ['admin', 'service', 'tenant'];

/**
 * One API key as configured: only its hash is kept. A tenant key names its instances by id,
 * by labels, or both (an instance matching either belongs to it).
 */
export interface ApiKeyEntry {
  /** A name for logs and the rate limiter (never the key). */
  readonly id: string;
  /** `sha256:<64 hex>` of the whole key; `fleetql keys create` prints it. */
  readonly hash: string;
  readonly role: Role;
  readonly instances?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
}

/** Authentication, exposure and request limits. Part of `FleetqlOptions`; each documented once, here. */
export interface SecurityOptions {
  /**
   * `development`: anonymous requests are served (as admin) only while bound to a loopback
   * address; introspection and GraphiQL on. `production`: every request needs an API key or a
   * JWT; introspection and GraphiQL off unless turned on; at least one credential source is required.
   * @default "development"   env FLEETQL_MODE, flag --mode
   */
  mode?: Mode;
  /**
   * API keys (hashes only): a JSON array of ApiKeyEntry, or the path of a file holding one.
   * @default []   env FLEETQL_API_KEYS
   */
  apiKeys?: readonly ApiKeyEntry[];
  /** HS256 secret for JWTs (at least 32 bytes).   env FLEETQL_JWT_SECRET */
  jwtSecret?: string;
  /** URL of a JWKS for asymmetric JWTs (RS256, ES256, EdDSA…).   env FLEETQL_JWKS_URL */
  jwksUrl?: string;
  /** Required `iss` of every JWT (required when JWTs are on).   env FLEETQL_JWT_ISSUER */
  jwtIssuer?: string;
  /** Required `aud` of every JWT (required when JWTs are on).   env FLEETQL_JWT_AUDIENCE */
  jwtAudience?: string;
  /** Answer introspection queries. @default true in development, false in production   env FLEETQL_INTROSPECTION */
  introspection?: boolean;
  /** Origins allowed to call from a browser (CORS); empty: no cross-origin access. @default []   env FLEETQL_CORS_ORIGINS (comma-separated) */
  corsOrigins?: readonly string[];
  /** Deepest selection nesting (graphql-armor). @default 12   env FLEETQL_MAX_DEPTH */
  maxDepth?: number;
  /** Most aliases in one document (graphql-armor). @default 100   env FLEETQL_MAX_ALIASES */
  maxAliases?: number;
  /** Most tokens in one document (graphql-armor). @default 100000   env FLEETQL_MAX_TOKENS */
  maxTokens?: number;
  /** Most directives in one document (graphql-armor). @default 50   env FLEETQL_MAX_DIRECTIVES */
  maxDirectives?: number;
  /** Most static cost of one operation (graphql-armor cost: objects 2, scalars 1, ×1.5 per level, × `first`). @default 50000   env FLEETQL_MAX_COST */
  maxCost?: number;
  /** Largest request body in bytes. @default 1048576   env FLEETQL_MAX_BODY_BYTES */
  maxBodyBytes?: number;
  /** Most operations in one batched request (a JSON array body). @default 10   env FLEETQL_MAX_BATCH */
  maxBatch?: number;
  /** Deadline of one request (not of subscriptions), body reading included. @default 60000   env FLEETQL_REQUEST_TIMEOUT_MS */
  requestTimeoutMs?: number;
  /** Requests per second each principal may make on average; 0 turns the limit off. @default 50 in production, 0 in development   env FLEETQL_RATE_LIMIT_PER_SECOND */
  rateLimitPerSecond?: number;
  /** Requests a principal may make at once above the average. @default 100   env FLEETQL_RATE_LIMIT_BURST */
  rateLimitBurst?: number;
}

export interface SecurityConfig {
  readonly mode: Mode;
  readonly apiKeys: readonly ApiKeyEntry[];
  readonly jwt: { readonly secret: string | undefined; readonly jwksUrl: string | undefined; readonly issuer: string; readonly audience: string } | undefined;
  readonly introspection: boolean;
  readonly corsOrigins: readonly string[];
  readonly limits: {
    readonly maxDepth: number;
    readonly maxAliases: number;
    readonly maxTokens: number;
    readonly maxDirectives: number;
    readonly maxCost: number;
    readonly maxBodyBytes: number;
    readonly maxBatch: number;
    readonly requestTimeoutMs: number;
    readonly rateLimitPerSecond: number;
    readonly rateLimitBurst: number;
  };
}

export const securityDefaults = {
  mode: 'development',
  maxDepth: 12,
  maxAliases: 100,
  maxTokens: 100_000,
  maxDirectives: 50,
  maxCost: 50_000,
  maxBodyBytes: 1_048_576,
  maxBatch: 10,
  requestTimeoutMs: 60_000,
  rateLimitPerSecond: { development: 0, production: 50 },
  rateLimitBurst: 100,
} as const;

function invalid(message: string): FleetqlError {
  return new FleetqlError('CONFIG_INVALID', message);
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

const idPattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** What a credential grants: a role and, for a tenant, its instances. */
export interface Grant {
  readonly role: Role;
  readonly instances?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * Validates `{ role, instances?, labels? }` as an API key entry or a JWT's `fleetql` claim gives it
 * (a tenant must name its instances); `fail` makes the error (CONFIG_INVALID or UNAUTHENTICATED).
 */
export function parseGrant(raw: Record<string, unknown>, fail: (message: string) => Error): Grant {
  const { role, instances, labels } = raw;
  if (!roles.includes(role as Role)) throw fail('role must be admin, service or tenant');
  if (instances !== undefined && (!Array.isArray(instances) || !instances.every((id) => typeof id === 'string' && idPattern.test(id)))) throw fail('instances must be a list of instance ids');
  if (labels !== undefined && (labels === null || typeof labels !== 'object' || Array.isArray(labels) || Object.keys(labels).length === 0 || !Object.values(labels).every((v) => typeof v === 'string'))) {
    throw fail('labels must be a non-empty object of strings');
  }
  if (role === 'tenant' && instances === undefined && labels === undefined) throw fail('a tenant names its instances (instances and/or labels)');
  return Object.freeze({
    role: role as Role,
    ...(instances === undefined ? {} : { instances: Object.freeze([...(instances as string[])]) }),
    ...(labels === undefined ? {} : { labels: Object.freeze({ ...(labels as Record<string, string>) }) }),
  });
}

function apiKeyEntry(raw: unknown, index: number): ApiKeyEntry {
  const where = `API key #${index + 1}`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(`${where} must be an object {id, hash, role, instances?, labels?}`);
  const entry = raw as Record<string, unknown>;
  if (typeof entry['id'] !== 'string' || entry['id'].length === 0 || entry['id'].length > 100) throw invalid(`${where} needs an id (a name, 1 to 100 characters)`);
  if (typeof entry['hash'] !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(entry['hash'])) throw invalid(`${where} (${entry['id']}) needs hash "sha256:<64 lower-case hex>" (fleetql keys create prints one)`);
  const grant = parseGrant(entry, (message) => invalid(`${where} (${String(entry['id'])}): ${message}`));
  return Object.freeze({ id: entry['id'], hash: entry['hash'], ...grant });
}

/** FLEETQL_API_KEYS: a JSON array, or the path of a file holding one. */
export function parseApiKeys(raw: string): ApiKeyEntry[] {
  let text = raw.trim();
  if (!text.startsWith('[')) {
    try {
      text = fs.readFileSync(text, 'utf8');
    } catch {
      throw invalid('FLEETQL_API_KEYS must be a JSON array of keys or the path of a readable file holding one');
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('FLEETQL_API_KEYS does not hold valid JSON');
  }
  if (!Array.isArray(parsed)) throw invalid('FLEETQL_API_KEYS must hold a JSON array');
  return parsed as ApiKeyEntry[];
}

/** Fills defaults and validates; fails early with CONFIG_INVALID. */
export function expandSecurity(options: SecurityOptions): SecurityConfig {
  const mode = options.mode ?? securityDefaults.mode;
  if (mode !== 'development' && mode !== 'production') throw invalid(`mode must be "development" or "production", got "${String(mode)}"`);
  const apiKeys = (options.apiKeys ?? []).map(apiKeyEntry);
  const ids = new Set<string>();
  for (const key of apiKeys) {
    if (ids.has(key.id)) throw invalid(`two API keys are named "${key.id}"`);
    ids.add(key.id);
  }
  let jwt: SecurityConfig['jwt'];
  if (options.jwtSecret !== undefined || options.jwksUrl !== undefined) {
    if (options.jwtSecret !== undefined && Buffer.byteLength(options.jwtSecret) < 32) throw invalid('the JWT secret (FLEETQL_JWT_SECRET) must be at least 32 bytes');
    if (options.jwksUrl !== undefined && !/^https?:\/\//.test(options.jwksUrl)) throw invalid('FLEETQL_JWKS_URL must be an http(s) URL');
    if (!options.jwtIssuer || !options.jwtAudience) throw invalid('JWTs need both an issuer (FLEETQL_JWT_ISSUER) and an audience (FLEETQL_JWT_AUDIENCE) to check');
    jwt = Object.freeze({ secret: options.jwtSecret, jwksUrl: options.jwksUrl, issuer: options.jwtIssuer, audience: options.jwtAudience });
  }
  if (mode === 'production' && apiKeys.length === 0 && jwt === undefined) {
    throw invalid('production mode needs credentials to check: FLEETQL_API_KEYS and/or FLEETQL_JWT_SECRET / FLEETQL_JWKS_URL');
  }
  const corsOrigins = options.corsOrigins ?? [];
  for (const origin of corsOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) throw invalid(`CORS origin "${origin}" must look like https://app.example.com (scheme and host, no path)`);
  }
  const d = securityDefaults;
  return Object.freeze({
    mode,
    apiKeys: Object.freeze(apiKeys),
    jwt,
    introspection: options.introspection ?? mode === 'development',
    corsOrigins: Object.freeze([...corsOrigins]),
    limits: Object.freeze({
      maxDepth: integerIn('maxDepth', options.maxDepth ?? d.maxDepth, 1, 1000),
      maxAliases: integerIn('maxAliases', options.maxAliases ?? d.maxAliases, 0, 100_000),
      maxTokens: integerIn('maxTokens', options.maxTokens ?? d.maxTokens, 10, 10_000_000),
      maxDirectives: integerIn('maxDirectives', options.maxDirectives ?? d.maxDirectives, 0, 100_000),
      maxCost: integerIn('maxCost', options.maxCost ?? d.maxCost, 1, Number.MAX_SAFE_INTEGER),
      maxBodyBytes: integerIn('maxBodyBytes', options.maxBodyBytes ?? d.maxBodyBytes, 1024, 1_073_741_824),
      maxBatch: integerIn('maxBatch', options.maxBatch ?? d.maxBatch, 1, 1000),
      requestTimeoutMs: integerIn('requestTimeoutMs', options.requestTimeoutMs ?? d.requestTimeoutMs, 1, 3_600_000),
      rateLimitPerSecond: integerIn('rateLimitPerSecond', options.rateLimitPerSecond ?? d.rateLimitPerSecond[mode], 0, 1_000_000),
      rateLimitBurst: integerIn('rateLimitBurst', options.rateLimitBurst ?? d.rateLimitBurst, 1, 1_000_000),
    }),
  });
}

/** Reads the security FLEETQL_* variables; `get` returns undefined for unset or empty ones. */
export function securityOptionsFromEnv(get: (name: string) => string | undefined, parseInteger: (name: string, raw: string) => number, parseBoolean: (name: string, raw: string) => boolean): SecurityOptions {
  const options: SecurityOptions = {};
  let raw: string | undefined;
  if ((raw = get('FLEETQL_MODE')) !== undefined) options.mode = raw as Mode;
  if ((raw = get('FLEETQL_API_KEYS')) !== undefined) options.apiKeys = parseApiKeys(raw);
  if ((raw = get('FLEETQL_JWT_SECRET')) !== undefined) options.jwtSecret = raw;
  if ((raw = get('FLEETQL_JWKS_URL')) !== undefined) options.jwksUrl = raw;
  if ((raw = get('FLEETQL_JWT_ISSUER')) !== undefined) options.jwtIssuer = raw;
  if ((raw = get('FLEETQL_JWT_AUDIENCE')) !== undefined) options.jwtAudience = raw;
  if ((raw = get('FLEETQL_INTROSPECTION')) !== undefined) options.introspection = parseBoolean('FLEETQL_INTROSPECTION', raw);
  if ((raw = get('FLEETQL_CORS_ORIGINS')) !== undefined) options.corsOrigins = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const integers = [
    ['FLEETQL_MAX_DEPTH', 'maxDepth'],
    ['FLEETQL_MAX_ALIASES', 'maxAliases'],
    ['FLEETQL_MAX_TOKENS', 'maxTokens'],
    ['FLEETQL_MAX_DIRECTIVES', 'maxDirectives'],
    ['FLEETQL_MAX_COST', 'maxCost'],
    ['FLEETQL_MAX_BODY_BYTES', 'maxBodyBytes'],
    ['FLEETQL_MAX_BATCH', 'maxBatch'],
    ['FLEETQL_REQUEST_TIMEOUT_MS', 'requestTimeoutMs'],
    ['FLEETQL_RATE_LIMIT_PER_SECOND', 'rateLimitPerSecond'],
    ['FLEETQL_RATE_LIMIT_BURST', 'rateLimitBurst'],
  ] as const;
  for (const [name, field] of integers) if ((raw = get(name)) !== undefined) options[field] = parseInteger(name, raw);
  return options;
}
