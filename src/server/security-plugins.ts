import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { createGraphQLError, type Plugin, type YogaServerOptions } from 'graphql-yoga';
import type { SecurityConfig } from '../config/index.js';
import { useAuthorization } from './use-authorization.js';

/** The header a browser client must send on requests a form or an <img> could forge (GET, text/plain…). */
export const csrfHeader = 'x-graphql-yoga-csrf';

/**
 * Yoga plugins for limits and exposure: graphql-armor's depth, alias, token, directive and cost
 * limits (their refusals get code QUERY_TOO_COSTLY in useErrorCodes), CSRF prevention,
 * introspection off unless allowed (with field suggestions blocked then too), and role checks.
 */
export function securityPlugins(security: SecurityConfig): Plugin[] {
  const { limits } = security;
  return [
    useCSRFPrevention({ requestHeaders: [csrfHeader] }),
    useNoEmptyBatch(),
    EnvelopArmorPlugin({
      maxDepth: { n: limits.maxDepth },
      maxAliases: { n: limits.maxAliases },
      maxTokens: { n: limits.maxTokens },
      maxDirectives: { n: limits.maxDirectives },
      costLimit: { maxCost: limits.maxCost },
      blockFieldSuggestion: { enabled: !security.introspection },
    }) as Plugin,
    ...(security.introspection ? [] : [useDisableIntrospection() as Plugin]),
    useAuthorization(),
  ];
}

/** Yoga's own options for CORS and batching. */
export function securityOptions(security: SecurityConfig): Pick<YogaServerOptions<object, object>, 'cors' | 'batching'> {
  return {
    cors:
      security.corsOrigins.length === 0
        ? false
        : { origin: [...security.corsOrigins], credentials: false, allowedHeaders: ['content-type', 'authorization', 'x-api-key', 'x-request-id', csrfHeader], exposedHeaders: ['x-request-id', 'retry-after'], maxAge: 600 },
    batching: { limit: security.limits.maxBatch },
  };
}

/** An empty batch (`[]`) asks nothing: a 400, not an empty 200. */
function useNoEmptyBatch(): Plugin {
  return {
    onRequestParse() {
      return {
        onRequestParseDone({ requestParserResult }) {
          if (Array.isArray(requestParserResult) && requestParserResult.length === 0) {
            throw createGraphQLError('an empty batch asks nothing', { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
          }
        },
      };
    },
  };
}
