import { compareSqlValues } from './compare.js';
import type { AggregateLayout } from './plan.js';

const isNull = (value: unknown): boolean => value === null || value === undefined;

function addIntegers(values: readonly unknown[]): bigint | null {
  let total: bigint | null = null;
  for (const value of values) if (!isNull(value)) total = (total ?? 0n) + BigInt(value as bigint | number);
  return total;
}

/**
 * Merges per-instance aggregate rows (same layout) into the row one database holding all their
 * rows would give: counts and integer sums add exactly (bigint), min/max compare as SQLite does,
 * avg is the merged sum over the merged count, never an average of averages.
 */
export function mergeAggregateRows(layout: AggregateLayout, partials: readonly (readonly unknown[])[]): unknown[] {
  const merged: unknown[] = layout.kinds.map(({ kind }, i) => {
    const values = partials.map((row) => row[i]);
    switch (kind) {
      case 'count':
      case 'count_col':
        return addIntegers(values) ?? 0n;
      case 'sum_hi':
      case 'sum_lo':
        return addIntegers(values);
      case 'sum': {
        let total: number | null = null;
        for (const value of values) if (!isNull(value)) total = (total ?? 0) + Number(value);
        return total;
      }
      case 'min':
      case 'max': {
        let best: unknown = null;
        for (const value of values) {
          if (isNull(value)) continue;
          if (best === null || (kind === 'min' ? compareSqlValues(value, best) < 0 : compareSqlValues(value, best) > 0)) best = value;
        }
        return best;
      }
      case 'avg':
        return null; // from the merged sum and count, below
    }
  });
  layout.kinds.forEach(({ kind, column }, i) => {
    if (kind !== 'avg' || column === undefined) return;
    const count = merged[layout.index.get(`count_col:${column.sql}`)!] as bigint;
    if (count === 0n) return;
    if (column.kind === 'integer') {
      const hi = merged[layout.index.get(`sum_hi:${column.sql}`)!] as bigint;
      const lo = merged[layout.index.get(`sum_lo:${column.sql}`)!] as bigint;
      merged[i] = Number(hi * 4294967296n + lo) / Number(count);
    } else merged[i] = (merged[layout.index.get(`sum:${column.sql}`)!] as number) / Number(count);
  });
  return merged;
}

/**
 * Keeps the first `limit` items of several sorted lists under one order: each list is merged into
 * the kept prefix as it arrives (a k-way merge done incrementally), so memory stays O(limit).
 */
export class TopK<T> {
  readonly #limit: number;
  readonly #compare: (a: T, b: T) => number;
  #kept: T[] = [];

  constructor(limit: number, compare: (a: T, b: T) => number) {
    this.#limit = limit;
    this.#compare = compare;
  }

  /** `sorted` must already be in this order (each instance returns its rows ordered). */
  add(sorted: readonly T[]): void {
    const merged: T[] = [];
    let i = 0;
    let j = 0;
    while (merged.length < this.#limit && (i < this.#kept.length || j < sorted.length)) {
      if (j >= sorted.length || (i < this.#kept.length && this.#compare(this.#kept[i]!, sorted[j]!) <= 0)) merged.push(this.#kept[i++]!);
      else merged.push(sorted[j++]!);
    }
    this.#kept = merged;
  }

  get items(): readonly T[] {
    return this.#kept;
  }
}
