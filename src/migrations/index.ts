export { appliedMigrations, appliedMigrationsTable, currentVersion, migrateTo, VersionMismatch } from './apply.js';
export type { AppliedMigration, MigrateOptions } from './apply.js';
export { checksumOf, loadMigrations, makeMigrationSet } from './migration-set.js';
export type { Migration, MigrationSet } from './migration-set.js';
export { verifyAgainstCatalog } from './verify.js';
export { columnKind, introspectVersions, isInternalName } from './instance-schema.js';
export type { ColumnInfo, ColumnKind, ForeignKeyInfo, InstanceSchema, TableInfo, UniqueConstraintInfo } from './instance-schema.js';
