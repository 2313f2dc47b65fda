import { FleetqlError } from '../errors.js';

const valid = /^[_A-Za-z][_0-9A-Za-z]*$/;

/** A GraphQL name for an SQL identifier: invalid characters become `_`, a leading digit or `__` gets a prefix. */
export function graphqlName(sqlName: string): string {
  let name = sqlName.replace(/[^_0-9A-Za-z]/g, '_');
  if (name === '' || /^[0-9]/.test(name)) name = `_${name}`;
  if (name.startsWith('__')) name = `x${name}`;
  if (!valid.test(name)) throw new FleetqlError('MIGRATION_INVALID', `cannot name "${sqlName}" in GraphQL`);
  return name;
}

/**
 * Hands out unique names within one namespace (a type's fields, or the schema's types). Names are
 * taken in a stable order, so the same migrations always give the same schema.
 */
export class NameRegistry {
  readonly #taken: Set<string>;
  constructor(reserved: Iterable<string> = []) {
    this.#taken = new Set(reserved);
  }

  has(name: string): boolean {
    return this.#taken.has(name);
  }

  /** `preferred` if free, else `preferred_2`, `preferred_3`… */
  claim(preferred: string): string {
    let name = preferred;
    for (let n = 2; this.#taken.has(name); n++) name = `${preferred}_${n}`;
    this.#taken.add(name);
    return name;
  }

  /** Claims every name in `names` (all free) or none; for a group of names that must share a stem. */
  tryClaimAll(names: readonly string[]): boolean {
    if (names.some((name) => this.#taken.has(name)) || new Set(names).size !== names.length) return false;
    for (const name of names) this.#taken.add(name);
    return true;
  }
}
