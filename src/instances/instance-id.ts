import { invalidInstanceId } from '../errors.js';

declare const validated: unique symbol;
/** An instance id that passed `parseInstanceId`; only such ids ever reach a path or the catalog. */
export type InstanceId = string & { readonly [validated]: true };

const pattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function parseInstanceId(raw: unknown): InstanceId {
  if (typeof raw !== 'string') throw invalidInstanceId('it must be a string');
  if (raw.length === 0) throw invalidInstanceId('it is empty');
  if (raw.length > 63) throw invalidInstanceId(`it has ${raw.length} characters; at most 63 are allowed`);
  if (!pattern.test(raw)) {
    throw invalidInstanceId(`"${raw.replace(/[^\x20-\x7e]/g, '?')}" must match ^[a-z0-9][a-z0-9_-]{0,62}$ (lower-case letters, digits, "_" and "-")`);
  }
  return raw as InstanceId;
}
