import { GraphQLError } from 'graphql';
import type { Logger } from '../logger.js';
import { currentRequestId } from './request-scope.js';

/**
 * Errors made for clients (GraphQLErrors, fleetql's coded errors among them) pass; anything else
 * becomes "Unexpected error." with code INTERNAL_SERVER_ERROR and the request id, and its
 * details go to the log only (under the same request id).
 */
export function createMaskError(logger: Logger) {
  return (error: unknown, message: string): Error => {
    const requestId = currentRequestId();
    const ids = requestId === undefined ? {} : { request_id: requestId };
    if (error instanceof GraphQLError) {
      const original = error.originalError;
      if (original === undefined || original === null || original instanceof GraphQLError) return error;
      logger.error('unexpected error in a resolver', { error: original, path: error.path?.join('.'), ...ids });
      return new GraphQLError(message, {
        ...(error.nodes ? { nodes: error.nodes } : {}),
        ...(error.path ? { path: error.path } : {}),
        extensions: { code: 'INTERNAL_SERVER_ERROR', ...ids },
      });
    }
    logger.error('unexpected error', { error, ...ids });
    return new GraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR', ...ids } });
  };
}
