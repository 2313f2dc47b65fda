import type { ComparisonExp, OrderDirection } from '../sql/index.js';
import type { ArchiveRecords } from './archive-records.js';
import type { RolloutStore } from './rollout-store.js';

export const instanceStates = ['CREATING', 'ACTIVE', 'QUARANTINED', 'ARCHIVING', 'ARCHIVED', 'DESTROYING', 'DESTROYED'] as const;
export type InstanceState = (typeof instanceStates)[number];

export type Labels = Readonly<Record<string, string>>;

/** What the catalog knows of one instance; the catalog is the source of truth for all of it. */
export interface InstanceRecord {
  readonly id: string;
  readonly labels: Labels;
  readonly state: InstanceState;
  readonly schema_version: number;
  readonly created_at: string;
  readonly updated_at: string;
}

/** `instances_bool_exp`: selects instances by catalog fields only, so no instance file is opened. */
export interface InstanceFilter {
  _and?: readonly InstanceFilter[] | null;
  _or?: readonly InstanceFilter[] | null;
  _not?: InstanceFilter | null;
  id?: ComparisonExp | null;
  state?: ComparisonExp | null;
  schema_version?: ComparisonExp | null;
  created_at?: ComparisonExp | null;
  updated_at?: ComparisonExp | null;
  labels?: LabelsFilter | null;
}

export interface LabelsFilter {
  /** Every given key has exactly the given value; validated when compiled, since it arrives as JSON. */
  _contains?: {} | null;
  _has_key?: string | null;
  _has_keys_any?: readonly string[] | null;
  _has_keys_all?: readonly string[] | null;
}

export type InstanceOrderColumn = 'id' | 'state' | 'schema_version' | 'created_at' | 'updated_at';
export type InstanceOrderBy = Partial<Record<InstanceOrderColumn, OrderDirection | null>>;

export interface InstanceQuery {
  where?: InstanceFilter | undefined;
  orderBy?: readonly InstanceOrderBy[] | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
}

export type OperationKind = 'create' | 'destroy' | 'retire';

/** A journaled lifecycle operation: pending until it completes or a restart finishes or undoes it. */
export interface Operation {
  readonly id: number;
  readonly kind: OperationKind;
  readonly instance_id: string;
  readonly started_at: string;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface RecordedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
}

/**
 * The control-plane store. Every method is one transaction. The instance lifecycle calls the
 * begin/complete pairs around its file work, so the journal always says what a crash interrupted.
 */
export interface Catalog {
  getInstance(id: string): InstanceRecord | undefined;
  /** The records as of now; the array may be shared with other callers (a cached listing). */
  listInstances(query: InstanceQuery): readonly InstanceRecord[];
  countInstances(where?: InstanceFilter): number;
  /** Every catalogued instance counted by state and schema version, in one read (for metrics). */
  countByStateAndVersion(): Array<{ state: InstanceState; schema_version: number; count: number }>;
  /** How many catalogued (not destroyed) instances stand at each schema version. */
  countByVersion(): Map<number, number>;

  /** Claims `id` (state CREATING) and journals the creation; INSTANCE_EXISTS unless it is free or in a `replaceable` state. */
  beginCreate(id: string, labels: Labels, detail: Record<string, unknown>, replaceable?: readonly InstanceState[]): Operation;
  completeCreate(operation: Operation, schemaVersion: number): InstanceRecord;
  /** Forgets a creation that did not finish: the row goes, the operation is marked rolled back. */
  rollbackCreate(operation: Operation): void;

  /** Marks the instance DESTROYING and journals it; INSTANCE_NOT_FOUND if there is none to destroy. */
  beginDestroy(id: string, detail: Record<string, unknown>): Operation;
  completeDestroy(operation: Operation): InstanceRecord;

  /** Marks an ACTIVE instance ARCHIVING (no reads or writes) and journals its retirement. */
  beginRetire(id: string, detail: Record<string, unknown>): Operation;
  /** The archive could not be made: the instance is ACTIVE again, the operation rolled back. */
  rollbackRetire(operation: Operation): InstanceRecord;
  /** The archive is verified: the instance takes its final state; its file is removed next. */
  markRetired(operation: Operation, state: 'ARCHIVED' | 'DESTROYED', archiveId: string): InstanceRecord;
  /** The file is gone: the operation is done. */
  finishOperation(operation: Operation): void;

  pendingOperations(): Operation[];

  /** Records the schema version an instance's file has reached (lazy migration). */
  setSchemaVersion(id: string, version: number): InstanceRecord;

  /** Replaces the labels of a live instance. */
  setLabels(id: string, labels: Labels): InstanceRecord;

  /** Migrations that have been applied to at least one instance, as they were then. */
  recordedMigrations(): RecordedMigration[];
  recordMigrations(migrations: readonly RecordedMigration[]): void;

  /** Rollouts and the instances they move. */
  readonly rollouts: RolloutStore;
  /** Verified archives. */
  readonly archives: ArchiveRecords;

  close(): void;
}
