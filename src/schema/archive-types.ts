import type { ArchiveRecord, InstanceRecord } from '../catalog/index.js';
import { pageArgs } from '../query/index.js';
import type { Builder, SchemaTypes } from './builder.js';
import { access } from './field-access.js';

/** Archives: the list, archiving a live instance, restoring one (as itself or as a clone). */
export function registerArchiveTypes(builder: Builder, Instance: PothosSchemaTypes.ObjectRef<SchemaTypes, InstanceRecord>): void {
  const Archive = builder.objectRef<ArchiveRecord>('Archive').implement({
    description: 'A compressed, checksummed, verified snapshot of one instance in the archive store.',
    fields: (t) => ({
      id: t.exposeID('id'),
      instance_id: t.exposeID('instance_id'),
      created_at: t.field({ type: 'DateTime', resolve: (a) => a.created_at }),
      schema_version: t.exposeInt('schema_version'),
      labels: t.field({ type: 'JSON', resolve: (a) => a.labels }),
      size_bytes: t.field({ type: 'BigInt', description: 'Bytes of the database snapshot.', resolve: (a) => a.size_bytes }),
      compressed_bytes: t.field({ type: 'BigInt', description: 'Bytes stored (gzip).', resolve: (a) => a.compressed_bytes }),
      sha256: t.exposeString('sha256', { description: 'SHA-256 (hex) of the stored bytes.' }),
      verified_at: t.field({ type: 'DateTime', description: 'When the stored object was read back and matched its checksum.', resolve: (a) => a.verified_at }),
    }),
  });

  builder.queryField('archives', (t) =>
    t.field({
      type: [Archive],
      description: 'Verified archives, newest first; of one instance with instance_id.',
      ...access('operator-read'),
      args: { instance_id: t.arg.id(), limit: t.arg.int(), offset: t.arg.int() },
      resolve: (_root, args, ctx) => {
        const { limit, offset } = pageArgs(args.limit, args.offset);
        return ctx.archives.list(args.instance_id === null || args.instance_id === undefined ? undefined : String(args.instance_id), limit, offset);
      },
    }),
  );

  builder.mutationFields((t) => ({
    archive_instance: t.field({
      type: Archive,
      description:
        'Takes a consistent snapshot of a live instance (writes may continue), compresses it, stores it and reads it back to verify it; the instance stays ACTIVE. With retire: true the instance leaves service first and, once the archive is verified, becomes ARCHIVED and its file is removed.',
      args: { id: t.arg.id({ required: true }), retire: t.arg.boolean({ defaultValue: false, required: true }) },
      resolve: (_root, args, ctx) => ctx.archives.archive(args.id, { retire: args.retire }),
    }),
    restore_instance: t.field({
      type: Instance,
      description: 'Brings an archive back as its own instance (which must be free, ARCHIVED or DESTROYED) or as a clone under as_id, after verifying its checksum and PRAGMA integrity_check.',
      args: { archive_id: t.arg.id({ required: true }), as_id: t.arg.id() },
      resolve: (_root, args, ctx) => ctx.archives.restore(String(args.archive_id), args.as_id === null || args.as_id === undefined ? undefined : String(args.as_id)),
    }),
  }));
}
