export { SqliteDatabase, StorageError, storageStats } from './database.js';
export type { JournalMode, OpenOptions, RunResult } from './database.js';
export { countOpenDescriptors, descriptorTracker } from './descriptor-tracker.js';
export { copyFileDurably, copyOverDurably, createFilesDurably, fsyncPath, removeFileAndSidecars, writeFileDurably } from './files.js';
export { PackWriter, readPackIndex, restorePackEntryDurably, sameAsPackEntry } from './snapshot-pack.js';
export type { PackEntry } from './snapshot-pack.js';
