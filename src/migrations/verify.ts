import type { Catalog } from '../catalog/index.js';
import { FleetqlError } from '../errors.js';
import type { MigrationSet } from './migration-set.js';

/**
 * Refuses to start on a migration set that contradicts what instances already ran: a recorded
 * migration whose file is gone, or whose file changed since it was applied.
 */
export function verifyAgainstCatalog(set: MigrationSet, catalog: Catalog): void {
  for (const recorded of catalog.recordedMigrations()) {
    const migration = set.get(recorded.version);
    const fileName = `${String(recorded.version).padStart(4, '0')}_${recorded.name}.sql`;
    if (migration === undefined) {
      throw new FleetqlError('MIGRATION_MISSING', `migration ${recorded.version} (${fileName}) was applied to instances but its file is missing from the migrations directory`, {
        extensions: { version: recorded.version },
      });
    }
    if (migration.checksum !== recorded.checksum) {
      throw new FleetqlError(
        'MIGRATION_CHECKSUM_MISMATCH',
        `migration ${recorded.version} (${fileName}) was changed after it was applied: its sha256 was ${recorded.checksum.slice(0, 12)}…, the file now has ${migration.checksum.slice(0, 12)}…; add a new migration instead of editing an applied one`,
        { extensions: { version: recorded.version } },
      );
    }
  }
}
