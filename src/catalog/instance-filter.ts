import { FleetqlError } from '../errors.js';
import { and, compileComparison, orderSql, quoteIdentifier } from '../sql/index.js';
import type { InstanceFilter, InstanceOrderBy, LabelsFilter } from './catalog.js';

const columns = ['id', 'state', 'schema_version', 'created_at', 'updated_at'] as const;

/** Compiles `instances_bool_exp` into a predicate over `instances`; values go to `params`. */
export function compileInstanceFilter(filter: InstanceFilter | null | undefined, params: unknown[]): string {
  if (filter === null || filter === undefined) return '1';
  const predicates: string[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (value === undefined || value === null) continue;
    switch (key) {
      case '_and':
        predicates.push(and((value as InstanceFilter[]).map((f) => compileInstanceFilter(f, params))));
        break;
      case '_or': {
        const parts = (value as InstanceFilter[]).map((f) => compileInstanceFilter(f, params));
        predicates.push(parts.length === 0 ? '0' : parts.map((p) => `(${p})`).join(' OR '));
        break;
      }
      case '_not':
        predicates.push(`NOT (${compileInstanceFilter(value as InstanceFilter, params)})`);
        break;
      case 'labels':
        predicates.push(...compileLabelsFilter(value as LabelsFilter, params));
        break;
      default:
        if (!(columns as readonly string[]).includes(key)) throw new FleetqlError('INVALID_ARGUMENT', `unknown instance filter field ${key}`);
        predicates.push(...compileComparison(`instances.${quoteIdentifier(key)}`, value as object, params));
    }
  }
  return and(predicates);
}

function hasLabel(params: unknown[], key: string, value?: string): string {
  params.push(key);
  if (value === undefined) return `EXISTS (SELECT 1 FROM instance_labels l WHERE l.instance_id = instances.id AND l.key = ?)`;
  params.push(value);
  return `EXISTS (SELECT 1 FROM instance_labels l WHERE l.instance_id = instances.id AND l.key = ? AND l.value = ?)`;
}

function compileLabelsFilter(filter: LabelsFilter, params: unknown[]): string[] {
  const predicates: string[] = [];
  if (filter._contains !== undefined && filter._contains !== null) {
    if (typeof filter._contains !== 'object' || Array.isArray(filter._contains)) throw new FleetqlError('INVALID_ARGUMENT', 'labels._contains takes an object of strings');
    for (const [key, value] of Object.entries(filter._contains)) {
      if (typeof value !== 'string') throw new FleetqlError('INVALID_ARGUMENT', `labels._contains values must be strings (key "${key}")`);
      predicates.push(hasLabel(params, key, value));
    }
  }
  if (typeof filter._has_key === 'string') predicates.push(hasLabel(params, filter._has_key));
  if (filter._has_keys_all) for (const key of filter._has_keys_all) predicates.push(hasLabel(params, key));
  if (filter._has_keys_any) {
    const any = filter._has_keys_any.map((key) => hasLabel(params, key));
    predicates.push(any.length === 0 ? '0' : any.map((p) => `(${p})`).join(' OR '));
  }
  return predicates;
}

/** Whether the filter constrains `state` anywhere; without that, listings leave out destroyed tombstones. */
export function filterMentionsState(filter: InstanceFilter | null | undefined): boolean {
  if (filter === null || filter === undefined) return false;
  if (filter.state !== undefined && filter.state !== null) return true;
  if (filter._not && filterMentionsState(filter._not)) return true;
  return [...(filter._and ?? []), ...(filter._or ?? [])].some(filterMentionsState);
}

/** ORDER BY for `instances_order_by`, one column per element, always ending with the id for determinism. */
export function compileInstanceOrder(orderBy: readonly InstanceOrderBy[] | undefined): string {
  const terms: string[] = [];
  for (const element of orderBy ?? []) {
    const entries = Object.entries(element).filter(([, direction]) => direction !== undefined && direction !== null);
    if (entries.length !== 1) throw new FleetqlError('INVALID_ARGUMENT', 'each order_by element must name exactly one column');
    const [column, direction] = entries[0]!;
    if (!(columns as readonly string[]).includes(column)) throw new FleetqlError('INVALID_ARGUMENT', `cannot order instances by ${column}`);
    terms.push(`instances.${quoteIdentifier(column)} ${orderSql(direction!)}`);
  }
  terms.push('instances.id ASC');
  return terms.join(', ');
}
