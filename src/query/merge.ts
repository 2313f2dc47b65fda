import { compareSqlValues } from './compare.js';
import type { AggregateLayout } from './plan.js';

const isNull = (value: unknown): boolean => value === null || value === undefined;

/**
 * Folds per-instance aggregate rows (same layout) into the row one database holding all their
 * rows would give, one row at a time (a fan-out keeps nothing per instance): counts and integer
 * sums add exactly (bigint), min/max compare as SQLite does, avg is the merged sum over the merged
 * count, never an average of averages.
 */
export class AggregateMerge {
  readonly layout: AggregateLayout;
  readonly #merged: unknown[];

  constructor(layout: AggregateLayout) {
    this.layout = layout;
    this.#merged = layout.kinds.map(({ kind }) => (kind === 'count' || kind === 'count_col' ? 0n : null));
  }

  add(row: readonly unknown[]): void {
    const merged = this.#merged;
    const kinds = this.layout.kinds;
    for (let i = 0; i < kinds.length; i++) {
      const value = row[i];
      if (isNull(value)) continue;
      const current = merged[i];
      switch (kinds[i]!.kind) {
        case 'count':
        case 'count_col':
        case 'sum_int':
          merged[i] = ((current as bigint | null) ?? 0n) + BigInt(value as bigint | number);
          break;
        case 'sum':
          merged[i] = ((current as number | null) ?? 0) + Number(value);
          break;
        case 'min':
          if (current === null || compareSqlValues(value, current) < 0) merged[i] = value;
          break;
        case 'max':
          if (current === null || compareSqlValues(value, current) > 0) merged[i] = value;
          break;
        case 'avg':
          break; // from the merged sum and count, in `result`
      }
    }
  }

  result(): unknown[] {
    const { layout } = this;
    const merged = [...this.#merged];
    layout.kinds.forEach(({ kind, column }, i) => {
      if (kind !== 'avg' || column === undefined) return;
      const count = merged[layout.index.get(`count_col:${column.sql}`)!] as bigint;
      if (count === 0n) return;
      merged[i] = Number(merged[layout.index.get(`sum:${column.sql}`)!] as bigint | number) / Number(count);
    });
    return merged;
  }
}

/** Merges per-instance aggregate rows at once (see AggregateMerge). */
export function mergeAggregateRows(layout: AggregateLayout, partials: readonly (readonly unknown[])[]): unknown[] {
  const merge = new AggregateMerge(layout);
  for (const row of partials) merge.add(row);
  return merge.result();
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
