import DataLoader from 'dataloader';
import type { ListArgs, RelationshipModel } from '../query/index.js';
import { tupleKey, type DataService, type Row } from './data-service.js';

/**
 * Per-request batching of relationship fields: every parent asking for the same relationship of
 * the same instance with the same arguments is answered by one statement.
 */
export class RelationshipLoaders {
  readonly #data: DataService;
  readonly #loaders = new Map<string, DataLoader<readonly unknown[], Row[], string>>();

  constructor(data: DataService) {
    this.#data = data;
  }

  load(row: Row, relationship: RelationshipModel, args: ListArgs): Promise<Row[]> {
    const tuple = relationship.columns.map((column) => row.get(column));
    if (tuple.some((value) => value === null)) return Promise.resolve([]);
    const argsKey = JSON.stringify(args, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value));
    const loaderKey = `${row.instanceId}\u0000${row.table.sql}\u0000${relationship.field}\u0000${argsKey}`;
    let loader = this.#loaders.get(loaderKey);
    if (loader === undefined) {
      loader = new DataLoader<readonly unknown[], Row[], string>(
        async (tuples) => {
          const byKey = await this.#data.related(row.instanceId, relationship, tuples, args);
          return tuples.map((t) => byKey.get(tupleKey(t)) ?? []);
        },
        { cacheKeyFn: tupleKey, maxBatchSize: 500 },
      );
      this.#loaders.set(loaderKey, loader);
    }
    return loader.load(tuple);
  }
}
