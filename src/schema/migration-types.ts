import type { Migration } from '../migrations/index.js';
import type { Builder } from './builder.js';

export function registerMigrationTypes(builder: Builder): void {
  const MigrationRef = builder.objectRef<Migration>('Migration').implement({
    description: 'One migration file of the loaded set; the head is the last one.',
    fields: (t) => ({
      version: t.exposeInt('version'),
      name: t.exposeString('name'),
      checksum: t.exposeString('checksum', { description: 'SHA-256 (hex) of the file.' }),
      is_head: t.boolean({ resolve: (m, _args, ctx) => m.version === ctx.migrations.head }),
      instances: t.int({
        description: 'How many catalogued instances stand at exactly this version.',
        resolve: (m, _args, ctx) => ctx.instances.countByVersion().get(m.version) ?? 0,
      }),
    }),
  });

  builder.queryField('migrations', (t) =>
    t.field({
      type: [MigrationRef],
      description: 'The migrations that define every instance schema, in order.',
      resolve: (_root, _args, ctx) => ctx.migrations.migrations,
    }),
  );
}
