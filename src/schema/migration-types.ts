import type { Migration } from '../migrations/index.js';
import type { Builder } from './builder.js';
import { access } from './field-access.js';

/** A migration with how many instances stand at it, counted once for the whole list. */
interface MigrationRow {
  migration: Migration;
  counts: () => Map<number, number>;
}

export function registerMigrationTypes(builder: Builder): void {
  const MigrationRef = builder.objectRef<MigrationRow>('Migration').implement({
    description: 'One migration file of the loaded set; the head is the last one.',
    fields: (t) => ({
      version: t.int({ resolve: (m) => m.migration.version }),
      name: t.string({ resolve: (m) => m.migration.name }),
      checksum: t.string({ description: 'SHA-256 (hex) of the file.', resolve: (m) => m.migration.checksum }),
      is_head: t.boolean({ resolve: (m, _args, ctx) => m.migration.version === ctx.migrations.head }),
      instances: t.int({
        description: 'How many catalogued instances stand at exactly this version.',
        resolve: (m) => m.counts().get(m.migration.version) ?? 0,
      }),
    }),
  });

  builder.queryField('migrations', (t) =>
    t.field({
      type: [MigrationRef],
      description: 'The migrations that define every instance schema, in order.',
      ...access('operator-read'),
      resolve: (_root, _args, ctx) => {
        // One GROUP BY over the catalog for the whole list, and only if a client asks for counts.
        let counts: Map<number, number> | undefined;
        const once = () => (counts ??= ctx.instances.countByVersion());
        return ctx.migrations.migrations.map((migration) => ({ migration, counts: once }));
      },
    }),
  );
}
