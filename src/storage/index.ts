export { SqliteDatabase, StorageError, storageStats } from './database.js';
export type { JournalMode, OpenOptions, RunResult } from './database.js';
export { countOpenDescriptors, descriptorTracker } from './descriptor-tracker.js';
export { copyFileDurably, copyOverDurably, createFilesDurably, fsyncPath, removeFileAndSidecars, writeFileDurably } from './files.js';
