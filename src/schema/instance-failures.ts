import { GraphQLError, responsePathAsArray, type GraphQLResolveInfo } from 'graphql';
import type { FleetqlError } from '../errors.js';
import type { SchemaTypes } from './builder.js';

/**
 * Hands the failed instances of a fleet answer to GraphQL: one error per failed instance goes
 * beside the data (with the field's path, its code and instance_id); when the answer may not be
 * partial, any failure fails the field.
 */
export function settleFailures<T>(value: T, failures: readonly FleetqlError[], partial: boolean, info: GraphQLResolveInfo, ctx: SchemaTypes['Context']): T {
  if (failures.length === 0) return value;
  const path = responsePathAsArray(info.path);
  const toGraphQL = (failure: FleetqlError) => new GraphQLError(failure.message, { path, extensions: failure.extensions });
  if (!partial) {
    const [first, ...rest] = failures;
    ctx.extraErrors.push(...rest.map(toGraphQL));
    throw first!;
  }
  ctx.extraErrors.push(...failures.map(toGraphQL));
  return value;
}
