import type { Labels } from '../catalog/index.js';
import type { Role } from '../config/index.js';
import { unrestricted, type InstanceScope } from '../instances/index.js';

/** Who is asking: from an API key, a JWT, or (development on loopback only) nobody in particular. */
export interface Principal {
  /** Stable name for logs and the rate limiter: `key:<id>`, `jwt:<iss>:<sub>` or `anonymous`. */
  readonly id: string;
  readonly role: Role;
  readonly via: 'api-key' | 'jwt' | 'anonymous';
  /** For a tenant: the instances it owns, by id or by labels. */
  readonly instances?: { readonly ids: readonly string[]; readonly labels?: Labels | undefined };
}

export const anonymous: Principal = Object.freeze({ id: 'anonymous', role: 'admin', via: 'anonymous' });

/**
 * What a role may touch below the GraphQL layer: admin everything; service reads everything and
 * changes nothing; tenant reads and writes the data of its own instances, nothing else.
 */
export function scopeOf(principal: Principal): InstanceScope {
  switch (principal.role) {
    case 'admin':
      return unrestricted;
    case 'service':
      return { write: false, lifecycle: false };
    case 'tenant':
      return { instances: principal.instances ?? { ids: [] }, write: true, lifecycle: false };
  }
}
