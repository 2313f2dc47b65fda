import { getOperationAST, parse } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Authenticator, Principal } from '../auth/index.js';
import type { SecurityConfig } from '../config/index.js';
import { FleetqlError } from '../errors.js';
import type { Logger } from '../logger.js';
import { RateLimiter } from './rate-limiter.js';
import { requestIdOf } from './request-scope.js';


/** What a request that passed the gate carries into GraphQL. */
export interface GateContext {
  /** Undefined only for the GraphiQL page (which runs nothing by itself). */
  readonly principal: Principal | undefined;
}

function refuse(request: Request, error: FleetqlError, headers: Record<string, string> = {}): Response {
  const status = (error.extensions['http'] as { status?: number } | undefined)?.status ?? 400;
  const body = { errors: [{ message: error.message, extensions: { code: error.code, request_id: requestIdOf(request) } }] };
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestIdOf(request), ...headers } });
}

/** A GET of the GraphiQL page: static HTML; every query it sends carries the user's credentials. */
function isGraphiqlPage(request: Request): boolean {
  return request.method === 'GET' && (request.headers.get('accept') ?? '').includes('text/html');
}

/** Reads the body up to `max` bytes; undefined when it is larger (reading stops there). */
async function readLimited(request: Request, max: number): Promise<Buffer | undefined> {
  if (request.body === null) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    size += read.value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(read.value);
  }
  return Buffer.concat(chunks);
}

/**
 * Whether the request is a subscription over SSE (the one kind of request that may outlive the
 * deadline). Decided from the document itself, so an `accept` header alone does not exempt a query.
 */
function isSubscription(request: Request, body: Buffer | undefined): boolean {
  if (!(request.headers.get('accept') ?? '').includes('text/event-stream')) return false;
  let query: unknown;
  let operationName: unknown;
  try {
    if (body === undefined) {
      const params = new URL(request.url).searchParams;
      query = params.get('query');
      operationName = params.get('operationName');
    } else {
      ({ query, operationName } = JSON.parse(body.toString('utf8')) as { query?: unknown; operationName?: unknown });
    }
    if (typeof query !== 'string') return false;
    return getOperationAST(parse(query), typeof operationName === 'string' ? operationName : null)?.operation === 'subscription';
  } catch {
    return false;
  }
}

/**
 * Everything decided before GraphQL parses a byte: who is asking (401 without acceptable
 * credentials), their rate (429 with Retry-After), the body size (413), and a deadline over the
 * whole request, body included (504 REQUEST_TIMEOUT; a subscription over SSE is exempt once its document shows it is one). Each refusal
 * is a JSON GraphQL error with a code and the request id.
 */
export type RequestGate = ReturnType<typeof createRequestGate>;

export function createRequestGate(options: { security: SecurityConfig; authenticator: Authenticator; graphiql: boolean; logger: Logger }) {
  const { limits } = options.security;
  const limiter = new RateLimiter(limits.rateLimitPerSecond, limits.rateLimitBurst);

  async function admit(request: Request, next: (request: Request, context: GateContext) => Response | Promise<Response>, exemptFromDeadline: () => void): Promise<Response> {
    let principal: Principal | undefined;
    try {
      principal = await options.authenticator.authenticate(request);
    } catch (error) {
      if (error instanceof FleetqlError) return refuse(request, error, { 'www-authenticate': 'Bearer' });
      throw error;
    }
    // CORS preflights never carry credentials; Yoga answers them without running anything.
    if (principal === undefined && request.method !== 'OPTIONS' && !(options.graphiql && isGraphiqlPage(request))) {
      return refuse(request, new FleetqlError('UNAUTHENTICATED', 'credentials required: an API key or a JWT (Authorization: Bearer …)'), { 'www-authenticate': 'Bearer' });
    }
    if (principal !== undefined) {
      const wait = limiter.take(principal.id);
      if (wait > 0) return refuse(request, new FleetqlError('RATE_LIMITED', `too many requests from ${principal.id}: retry in ${wait} s`), { 'retry-after': String(wait) });
    }
    const declared = Number(request.headers.get('content-length') ?? '0');
    if (declared > limits.maxBodyBytes) return refuse(request, new FleetqlError('REQUEST_TOO_LARGE', `the request body is larger than ${limits.maxBodyBytes} bytes`));
    let body: Buffer | undefined;
    // A declared length within the limit is all the body there can be (HTTP framing): it passes
    // through untouched. Only a body of unknown length is read here, to cut it at the limit.
    const sized = request.headers.has('content-length') && Number.isFinite(declared);
    const wantsSubscription = (request.headers.get('accept') ?? '').includes('text/event-stream');
    if (request.body !== null && request.method !== 'GET' && request.method !== 'HEAD' && (!sized || wantsSubscription)) {
      body = await readLimited(request, limits.maxBodyBytes);
      if (body === undefined) return refuse(request, new FleetqlError('REQUEST_TOO_LARGE', `the request body is larger than ${limits.maxBodyBytes} bytes`));
      request = new Request(request.url, { method: request.method, headers: request.headers, body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) as unknown as BodyInit, signal: request.signal });
    }
    if (isSubscription(request, body)) exemptFromDeadline();
    return next(request, { principal });
  }

  return async (request: Request, next: (request: Request, context: GateContext) => Response | Promise<Response>): Promise<Response> => {
    const id = requestIdOf(request);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Response>((resolve) => {
      timer = setTimeout(() => {
        options.logger.warn('request deadline reached', { request_id: id, timeout_ms: limits.requestTimeoutMs });
        resolve(refuse(request, new FleetqlError('REQUEST_TIMEOUT', `the request did not finish within ${limits.requestTimeoutMs} ms`)));
      }, limits.requestTimeoutMs);
    });
    const work = admit(request, next, () => clearTimeout(timer));
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
      // A request cut off by the deadline may still fail later; nobody is waiting for it then.
      work.catch(() => undefined);
    }
  };
}

/**
 * The gate as a Yoga plugin: GraphQL's handling of a request runs inside the gate, with the
 * principal it found in the server context (Yoga's own routes before it, GraphiQL's page and CORS
 * preflights, need no credentials).
 */
export function useRequestGate(gate: RequestGate): Plugin<Partial<GateContext>> {
  return {
    onRequest({ requestHandler, setRequestHandler }) {
      setRequestHandler((request, serverContext) => gate(request, (admitted, context) => requestHandler(admitted, Object.assign(serverContext, context))));
    },
  };
}
