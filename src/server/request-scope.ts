import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { getOperationAST, GraphQLError, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import type { FleetqlMetrics } from '../metrics/index.js';

/** What one HTTP request carries through its handling: its id, and what GraphQL learned of it. */
export interface RequestScope {
  readonly requestId: string;
  /** query, mutation or subscription, once the document is parsed. */
  operationType?: string;
  /** The operation's own name from the document (a GraphQL name, never the query text). */
  operationName?: string;
  /** Set once a GraphQL result was made: the `extensions.code` of each of its errors. */
  errorCodes?: unknown[];
}

export const requestIdHeader = 'x-request-id';
const acceptable = /^[A-Za-z0-9._:-]{1,128}$/;
/** Operation names are the client's: long ones are cut in the log. */
const maxOperationName = 100;
/** Probes and scrapes come every few seconds; their access lines are debug, the rest info. */
const quietPaths = new Set(['/healthz', '/readyz', '/metrics']);

const storage = new AsyncLocalStorage<RequestScope>();

/** The scope of the request being handled here, if any (async context, so across awaits). */
export function currentRequest(): RequestScope | undefined {
  return storage.getStore();
}

/** Runs `fn` as the handling of a request with this id (what `scoped` does around a route). */
export function withinRequest<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId }, fn);
}

/** The request id a client sent, if sane, or a new one. */
export function requestIdFrom(request: Request): string {
  const given = request.headers.get(requestIdHeader);
  return given !== null && acceptable.test(given) ? given : randomUUID();
}

/**
 * A logger whose lines carry the `request_id` of the request being handled. Work a request starts
 * and that outlives it (a rollout runner) keeps that request's id: the request that caused it.
 */
export function withRequestId(logger: Logger): Logger {
  const wrap =
    (log: (message: string, fields?: Record<string, unknown>) => void) =>
    (message: string, fields: Record<string, unknown> = {}): void => {
      const scope = storage.getStore();
      log(message, scope === undefined || 'request_id' in fields ? fields : { request_id: scope.requestId, ...fields });
    };
  return { debug: wrap((m, f) => logger.debug(m, f)), info: wrap((m, f) => logger.info(m, f)), warn: wrap((m, f) => logger.warn(m, f)), error: wrap((m, f) => logger.error(m, f)) };
}

export type Route = (request: Request) => Promise<Response>;

const paths = new WeakMap<Request, string>();

/** The request's path: parsed once, though the scope, the /metrics check and the route each ask. */
export function pathOf(request: Request): string {
  let path = paths.get(request);
  if (path === undefined) paths.set(request, (path = new URL(request.url).pathname));
  return path;
}

/**
 * Runs `route` inside a request scope: the response carries `x-request-id`, every log line the
 * request causes carries `request_id`, and once the response has ended (a subscription stream
 * included) one access line is logged and the request is counted in the metrics.
 */
export function scoped(route: Route, options: { logger: Logger; metrics: FleetqlMetrics | undefined }) {
  const { logger, metrics } = options;
  return async (request: Request, context: { res?: ServerResponse }): Promise<Response> => {
    const started = performance.now();
    const scope: RequestScope = { requestId: requestIdFrom(request) };
    const path = pathOf(request);
    let response: Response | undefined;
    let done = false;
    const finish = (status: number) => {
      if (done) return;
      done = true;
      const durationMs = performance.now() - started;
      metrics?.httpRequestFinished(path, status);
      if (scope.errorCodes !== undefined) metrics?.graphqlRequest(scope.operationType, durationMs, scope.errorCodes);
      logger[quietPaths.has(path) ? 'debug' : 'info']('request', {
        request_id: scope.requestId,
        method: request.method,
        path,
        status,
        duration_ms: Math.round(durationMs * 10) / 10,
        ...(scope.operationType === undefined ? {} : { operation_type: scope.operationType }),
        ...(scope.operationName === undefined ? {} : { operation_name: scope.operationName }),
        ...(scope.errorCodes === undefined || scope.errorCodes.length === 0 ? {} : { error_codes: [...new Set(scope.errorCodes.map(String))] }),
      });
    };
    metrics?.httpRequestStarted();
    // Under Node the request ends when the response does (a stream may outlive the handler);
    // 499 (as nginx logs it) when the client went away before a response was made.
    const res = context.res;
    let failed = false;
    res?.once('close', () => finish(response?.status ?? (failed ? 500 : 499)));
    try {
      response = await storage.run(scope, () => route(request));
    } catch (error) {
      failed = true;
      if (res === undefined) finish(500);
      throw error;
    }
    if (!response.headers.has(requestIdHeader)) response.headers.set(requestIdHeader, scope.requestId);
    if (res === undefined) finish(response.status);
    return response;
  };
}

/**
 * Notes in the request scope what GraphQL knows of the request: the operation's type and name
 * once parsed, and the code of every error in the result. Put it after useErrorCodes, so the
 * codes are final.
 */
export function useRequestScope(): Plugin {
  return {
    onParse({ context }) {
      return ({ result }) => {
        const scope = storage.getStore();
        if (scope === undefined || result === null || result instanceof Error || typeof result !== 'object' || !('kind' in result)) return;
        const requested = (context as { params?: { operationName?: unknown } }).params?.operationName;
        const operation = getOperationAST(result as DocumentNode, typeof requested === 'string' ? requested : null);
        if (operation === null || operation === undefined) return;
        scope.operationType = operation.operation;
        if (operation.name !== undefined) scope.operationName = operation.name.value.slice(0, maxOperationName);
      };
    },
    onResultProcess({ result }) {
      const scope = storage.getStore();
      if (scope === undefined) return;
      const codes: unknown[] = (scope.errorCodes ??= []);
      // A stream's errors come later, in its events: a subscription is counted by how it started.
      for (const single of Array.isArray(result) ? result : [result]) {
        if (single === null || typeof single !== 'object' || !('errors' in single) || !Array.isArray(single.errors)) continue;
        for (const error of single.errors as unknown[]) codes.push(error instanceof GraphQLError ? error.extensions['code'] : (error as { extensions?: { code?: unknown } })?.extensions?.code);
      }
    },
  };
}
