export { appliedMigrations, appliedMigrationsTable, currentVersion, migrateTo } from './apply.js';
export type { AppliedMigration } from './apply.js';
export { checksumOf, loadMigrations, makeMigrationSet } from './migration-set.js';
export type { Migration, MigrationSet } from './migration-set.js';
export { verifyAgainstCatalog } from './verify.js';
