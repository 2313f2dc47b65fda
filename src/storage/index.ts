export { SqliteDatabase, StorageError, storageStats } from './database.js';
export type { JournalMode, OpenOptions, RunResult } from './database.js';
export { countOpenDescriptors, descriptorTracker } from './descriptor-tracker.js';
export {
  cannotLink,
  copyFileDurably,
  copyOverDurably,
  createFilesDurably,
  fsyncPath,
  linkDurably,
  linkFilesDurably,
  placeDurably,
  removeFileAndSidecars,
  sameFile,
  writeFileDurably,
} from './files.js';
