export { ArchiveService } from './archive-service.js';
export type { ArchiveObserver, ArchiveOperation } from './archive-service.js';
export type { ArchiveStore } from './archive-store.js';
export { FileArchiveStore } from './file-archive-store.js';
export { S3ArchiveStore } from './s3-archive-store.js';
export type { S3ArchiveStoreOptions } from './s3-archive-store.js';
