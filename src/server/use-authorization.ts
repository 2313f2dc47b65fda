import { GraphQLError, getOperationAST, Kind, type ExecutionArgs, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Principal } from '../auth/index.js';
import type { Role } from '../config/index.js';
import { FleetqlError } from '../errors.js';
import { fieldAccess, type FieldAccess } from '../schema/index.js';

const allowed: Record<FieldAccess, readonly Role[]> = {
  'instance-read': ['admin', 'service', 'tenant'],
  'operator-read': ['admin', 'service'],
  'data-write': ['admin', 'tenant'],
  admin: ['admin'],
};

/** Root fields an operation selects, through fragments (conservatively ignoring @skip/@include). */
function rootFieldNames(args: ExecutionArgs, selectionSet: SelectionSetNode, into: Set<string>, seen: Set<string>): void {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) into.add(selection.name.value);
    else if (selection.kind === Kind.INLINE_FRAGMENT) rootFieldNames(args, selection.selectionSet, into, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = args.document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value);
      if (fragment?.kind === Kind.FRAGMENT_DEFINITION) rootFieldNames(args, fragment.selectionSet, into, seen);
    }
  }
}

/** Why the principal may not run this operation, or undefined when it may. */
function refusal(args: ExecutionArgs): GraphQLError | undefined {
  const principal = (args.contextValue as { principal?: Principal }).principal;
  if (principal === undefined) return new FleetqlError('UNAUTHENTICATED', 'credentials required: an API key or a JWT (Authorization: Bearer …)');
  const operation = getOperationAST(args.document, args.operationName);
  const root = operation === null || operation === undefined ? undefined : args.schema.getRootType(operation.operation);
  if (operation === null || operation === undefined || root === undefined || root === null) return undefined; // graphql-js reports it
  const names = new Set<string>();
  rootFieldNames(args, operation.selectionSet, names, new Set());
  const refused = [...names].filter((name) => {
    const field = root.getFields()[name];
    return !name.startsWith('__') && field !== undefined && !allowed[fieldAccess(field)].includes(principal.role);
  });
  if (refused.length === 0) return undefined;
  return new FleetqlError('FORBIDDEN', `a ${principal.role} principal may not use ${refused.join(', ')}`);
}

/**
 * Role checks on root fields, before anything runs: each root field declares who may call it
 * (`access(...)` in the schema; unclassified fields are admin-only). What a tenant may see inside
 * the fields it may call is decided below the API, by its scoped services.
 */
export function useAuthorization(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const error = refusal(args);
      if (error !== undefined) setResultAndStopExecution({ data: null, errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = refusal(args);
      if (error !== undefined) setResultAndStopExecution({ data: null, errors: [error] });
    },
  };
}
