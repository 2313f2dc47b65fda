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

const unscoped = new WeakMap<Request, string>();

/** The id of the request being handled: its scope's, or (outside a scope) one made once per request. */
export function requestIdOf(request: Request): string {
  const scoped = currentRequest()?.requestId;
  if (scoped !== undefined) return scoped;
  let id = unscoped.get(request);
  if (id === undefined) unscoped.set(request, (id = requestIdFrom(request)));
  return id;
}

/** The id of the request whose handling is running here (async context), for logs deep inside. */
export function currentRequestId(): string | undefined {
  return currentRequest()?.requestId;
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

/** The request's path: parsed once, though the scope and the routes each ask. */
export function pathOf(request: Request): string {
  let path = paths.get(request);
  if (path === undefined) paths.set(request, (path = new URL(request.url).pathname));
  return path;
}

export interface ScopeOptions {
  readonly logger: Logger;
  readonly metrics: FleetqlMetrics | undefined;
}

/** A request being handled: its scope, and what ends it once the response has. */
class OpenRequest {
  readonly scope: RequestScope;
  readonly #request: Request;
  readonly #options: ScopeOptions;
  readonly #started = performance.now();
  #response: Response | undefined;
  #watched = false;
  #done = false;

  constructor(request: Request, options: ScopeOptions) {
    this.#request = request;
    this.#options = options;
    this.scope = { requestId: requestIdFrom(request) };
    options.metrics?.httpRequestStarted();
  }

  /**
   * Under Node the request ends when the response's stream closes (a subscription outlives its
   * handler); 499 (as nginx logs it) when the client went away before a response was made.
   */
  watch(res: ServerResponse | undefined): void {
    if (this.#watched || res === undefined) return;
    this.#watched = true;
    res.once('close', () => this.finish(this.#response?.status ?? 499));
  }

  /** The response is made: it carries the request id; without Node's response, the request ends here. */
  responded(response: Response, res: ServerResponse | undefined): void {
    this.#response = response;
    response.headers.set(requestIdHeader, this.scope.requestId);
    this.watch(res);
    if (res === undefined) this.finish(response.status);
  }

  /** One access line and the request's metrics, once. */
  finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    const { logger, metrics } = this.#options;
    const { scope } = this;
    const durationMs = performance.now() - this.#started;
    const path = pathOf(this.#request);
    metrics?.httpRequestFinished(path, status);
    if (scope.errorCodes !== undefined) metrics?.graphqlRequest(scope.operationType, durationMs, scope.errorCodes);
    logger[quietPaths.has(path) ? 'debug' : 'info']('request', {
      request_id: scope.requestId,
      method: this.#request.method,
      path,
      status,
      duration_ms: Math.round(durationMs * 10) / 10,
      ...(scope.operationType === undefined ? {} : { operation_type: scope.operationType }),
      ...(scope.operationName === undefined ? {} : { operation_name: scope.operationName }),
      ...(scope.errorCodes === undefined || scope.errorCodes.length === 0 ? {} : { error_codes: [...new Set(scope.errorCodes.map(String))] }),
    });
  }
}

/** Runs `handle` inside the request's scope; a failure (no response made) ends the request as a 500. */
function within<T>(open: OpenRequest, handle: () => T | Promise<T>): T | Promise<T> {
  const fail = (error: unknown): never => {
    open.finish(500);
    throw error;
  };
  return storage.run(open.scope, () => {
    try {
      const handled = handle();
      return handled instanceof Promise ? handled.catch(fail) : handled;
    } catch (error) {
      return fail(error);
    }
  });
}

/**
 * Runs `route` inside a request scope, for the small adapters beside GraphQL (while starting or
 * closing, the metrics port): the same request id, access line and metrics as useRequestScope.
 */
export function scoped(route: Route, options: ScopeOptions) {
  return async (request: Request, context: { res?: ServerResponse }): Promise<Response> => {
    const open = new OpenRequest(request, options);
    open.watch(context.res);
    return within(open, async () => {
      const response = await route(request);
      open.responded(response, context.res);
      return response;
    });
  };
}

const opened = new WeakMap<RequestScope, OpenRequest>();
const openRequest = (): OpenRequest | undefined => {
  const scope = storage.getStore();
  return scope === undefined ? undefined : opened.get(scope);
};

/**
 * The request scope as a Yoga plugin: every request is handled inside its scope
 * (the response carries `x-request-id`, every log line the request causes carries `request_id`),
 * and once the response has ended one access line is logged and the request is counted. It also
 * notes what GraphQL learns of the request: the operation's type and name once parsed, and the
 * code of every error in the result (put it after useErrorCodes, so the codes are final).
 */
export function useRequestScope(options: ScopeOptions): Plugin {
  const resOf = (serverContext: object) => (serverContext as { res?: ServerResponse }).res;
  return {
    instrumentation: {
      request({ request }, handle) {
        const open = new OpenRequest(request, options);
        opened.set(open.scope, open);
        return within(open, handle);
      },
    },
    onRequest({ serverContext }) {
      openRequest()?.watch(resOf(serverContext));
    },
    onResponse({ response, serverContext }) {
      openRequest()?.responded(response, resOf(serverContext));
    },
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
