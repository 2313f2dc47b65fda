import SchemaBuilder from '@pothos/core';
import type { GraphQLError } from 'graphql';
import type { ArchiveService } from '../archive/index.js';
import type { DataService, RelationshipLoaders } from '../data/index.js';
import type { FleetService } from '../fleet/index.js';
import type { RolloutService } from '../rollouts/index.js';
import type { ScopedInstances } from '../instances/index.js';
import type { MigrationSet } from '../migrations/index.js';

/** What every resolver gets: the services it may use, made once per request. */
export interface Context {
  /** The requesting principal's view of the instances: lookups and listings are scoped. */
  readonly instances: ScopedInstances;
  readonly migrations: MigrationSet;
  readonly requestId: string;
  readonly data: DataService;
  /** Made per request: batches relationship fields. */
  readonly loaders: RelationshipLoaders;
  readonly fleet: FleetService;
  readonly rollouts: RolloutService;
  readonly archives: ArchiveService;
  /** Aborted when the client goes away (ends subscriptions). */
  readonly signal?: AbortSignal;
  /** Errors of single instances in a fleet answer, added to the response beside the data. */
  readonly extraErrors: GraphQLError[];
}

export interface Types {
  Context: Context;
  Scalars: {
    JSON: { Input: {}; Output: unknown };
    DateTime: { Input: Date; Output: Date | string };
    BigInt: { Input: bigint; Output: bigint | number };
    Base64: { Input: string; Output: string };
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: false;
}

export type SchemaTypes = PothosSchemaTypes.ExtendDefaultTypes<Types>;
export type Builder = PothosSchemaTypes.SchemaBuilder<SchemaTypes>;

/** A fresh builder per schema build: the schema depends on the migration set it is built for. */
export function createBuilder(): Builder {
  return new SchemaBuilder<Types>({ defaultFieldNullability: false });
}
