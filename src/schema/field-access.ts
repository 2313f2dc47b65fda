import type { GraphQLField } from 'graphql';

/**
 * Who may call a root field, declared where the field is defined (in its `extensions`):
 * - `instance-read`: reads of instances and their data (tenants see only their own, below the API);
 * - `operator-read`: fleet-wide operator reads (migrations, rollouts, archives);
 * - `data-write`: row mutations on one instance;
 * - a root field without a class is for admins only, so a new field is closed until classified.
 */
export type FieldAccess = 'instance-read' | 'operator-read' | 'data-write' | 'admin';

const key = 'fleetqlAccess';

export function access(kind: Exclude<FieldAccess, 'admin'>): { extensions: Record<string, unknown> } {
  return { extensions: { [key]: kind } };
}

export function fieldAccess(field: GraphQLField<unknown, unknown>): FieldAccess {
  const kind = field.extensions[key];
  return kind === 'instance-read' || kind === 'operator-read' || kind === 'data-write' ? kind : 'admin';
}
