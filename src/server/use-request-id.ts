import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';

const header = 'x-request-id';
const acceptable = /^[A-Za-z0-9._:-]{1,128}$/;
const ids = new WeakMap<Request, string>();
const current = new AsyncLocalStorage<string>();

/** The request id a client sent (if sane) or a new one; logs and the response header carry it. */
export function requestIdOf(request: Request): string {
  let id = ids.get(request);
  if (id === undefined) {
    const given = request.headers.get(header);
    id = given !== null && acceptable.test(given) ? given : randomUUID();
    ids.set(request, id);
  }
  return id;
}

/** Runs the handling of one request with its id known to `currentRequestId` (for logs deep inside). */
export function withRequestId<T>(id: string, fn: () => T): T {
  return current.run(id, fn);
}

export function currentRequestId(): string | undefined {
  return current.getStore();
}

/** Echoes the request id in `x-request-id`, so a client can quote it when reporting a problem. */
export function useRequestId(): Plugin {
  return {
    onRequest({ request }) {
      // A request rebuilt by the gate (body read) keeps the id the gate gave it.
      const id = currentRequestId();
      if (id !== undefined && !ids.has(request)) ids.set(request, id);
    },
    onResponse({ request, response }) {
      response.headers.set(header, requestIdOf(request));
    },
  };
}
