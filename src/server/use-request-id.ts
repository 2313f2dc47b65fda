import type { Plugin } from 'graphql-yoga';
import { currentRequest, requestIdFrom, requestIdHeader } from './request-scope.js';

const unscoped = new WeakMap<Request, string>();

/** The id of the request being handled (request-scope.ts): the client's `x-request-id`, if sane, or a new one. */
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

/** Echoes the request id in `x-request-id`, so a client can quote it when reporting a problem. */
export function useRequestId(): Plugin {
  return {
    onResponse({ request, response }) {
      response.headers.set(requestIdHeader, requestIdOf(request));
    },
  };
}
