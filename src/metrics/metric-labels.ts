import type { ErrorCode } from '../errors.js';

/**
 * Every code a label may carry. Typed against ErrorCode, so a new code in errors.ts fails the type
 * check here until it is listed: a label set stays bounded and complete.
 */
const fleetqlCodes: Record<ErrorCode, true> = {
  INVALID_INSTANCE_ID: true,
  INVALID_LABELS: true,
  INVALID_ARGUMENT: true,
  INSTANCE_NOT_FOUND: true,
  INSTANCE_EXISTS: true,
  INSTANCE_BUSY: true,
  INSTANCE_UNAVAILABLE: true,
  INSTANCE_QUARANTINED: true,
  INSTANCE_TIMEOUT: true,
  NOT_SUPPORTED: true,
  ROLLOUT_CONFLICT: true,
  WRITTEN_SINCE_MIGRATION: true,
  ARCHIVE_STORE_UNAVAILABLE: true,
  ARCHIVE_NOT_FOUND: true,
  ARCHIVE_CORRUPT: true,
  SNAPSHOT_MISSING: true,
  ROLLOUT_NOT_FOUND: true,
  SCHEMA_VERSION_BEHIND: true,
  CONSTRAINT_VIOLATION: true,
  QUERY_TOO_COSTLY: true,
  MIGRATION_INVALID: true,
  MIGRATION_CHECKSUM_MISMATCH: true,
  MIGRATION_MISSING: true,
  MIGRATION_FAILED: true,
  CONFIG_INVALID: true,
  SERVICE_UNAVAILABLE: true,
  UNAUTHENTICATED: true,
  FORBIDDEN: true,
  RATE_LIMITED: true,
  REQUEST_TIMEOUT: true,
  REQUEST_TOO_LARGE: true,
  STORAGE_ERROR: true,
  INTERNAL_SERVER_ERROR: true,
};

/** Codes graphql-js's own errors get (src/server/use-error-codes.ts), and Yoga's CSRF check. */
const otherCodes = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'CSRF_HEADER_REQUIRED']);

/** The `code` label of an error: a known code, or INTERNAL for anything else (never free text). */
export function codeLabel(code: unknown): string {
  if (typeof code !== 'string') return 'INTERNAL';
  return Object.hasOwn(fleetqlCodes, code) || otherCodes.has(code) ? code : 'INTERNAL';
}

export const operationTypes = ['query', 'mutation', 'subscription'] as const;

/** The `operation_type` label: a GraphQL operation type, or `unknown` (unparsable or unselected). */
export function operationTypeLabel(type: string | undefined): string {
  return type !== undefined && (operationTypes as readonly string[]).includes(type) ? type : 'unknown';
}

/** Routes the server knows; any other path is `other`, so a scanner cannot mint label values. */
const routes = new Set(['/graphql', '/healthz', '/readyz', '/metrics']);

export function routeLabel(pathname: string): string {
  return routes.has(pathname) ? pathname : 'other';
}
