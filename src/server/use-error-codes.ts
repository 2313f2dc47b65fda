import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** The code of a GraphQL error that fleetql did not raise itself (syntax, validation, variables). */
function codeFor(error: GraphQLError): string {
  if (armorLimit.test(error.message)) return 'QUERY_TOO_COSTLY';
  if (error.message.startsWith('Required CSRF header')) return 'CSRF_HEADER_REQUIRED';
  if (error.message.startsWith('Syntax Error')) return 'GRAPHQL_PARSE_FAILED';
  if (error.message.startsWith('Variable "')) return 'BAD_USER_INPUT';
  return error.path === undefined ? 'GRAPHQL_VALIDATION_FAILED' : 'INTERNAL_SERVER_ERROR';
}

/** graphql-armor's limits report themselves as syntax errors (which Yoga may already have coded GRAPHQL_PARSE_FAILED). */
const armorLimit = /^Syntax Error: (Token limit|Query Cost limit|Query depth limit|Aliases limit|Directives limit) of /;

function withCode(error: unknown): unknown {
  if (!(error instanceof GraphQLError)) return error;
  if (typeof error.extensions['code'] === 'string' && !(armorLimit.test(error.message) && error.extensions['code'] !== 'QUERY_TOO_COSTLY')) return error;
  return new GraphQLError(error.message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.source ? { source: error.source } : {}),
    ...(error.positions ? { positions: error.positions } : {}),
    ...(error.path ? { path: error.path } : {}),
    ...(error.originalError ? { originalError: error.originalError } : {}),
    extensions: { ...error.extensions, code: codeFor(error) },
  });
}

/** Every error a client sees carries `extensions.code`, including graphql-js's own parse and validation errors. */
export function useErrorCodes(): Plugin {
  return {
    onResultProcess({ result }) {
      for (const single of Array.isArray(result) ? result : [result]) {
        if (single !== null && typeof single === 'object' && 'errors' in single && Array.isArray(single.errors)) {
          (single as { errors: unknown[] }).errors = single.errors.map(withCode);
        }
      }
    },
  };
}
