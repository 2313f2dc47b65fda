import fs from 'node:fs';
import path from 'node:path';

/**
 * Flushes a file's contents, or a directory's entries, to disk. A directory must be synced after a
 * rename or unlink in it, or a crash can bring the old entry back. (A read-only descriptor is enough
 * for fsync on Linux.)
 */
export function fsyncPath(target: string): void {
  const fd = fs.openSync(target, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Makes `temporary` (fully written) the file at `target`: sync, rename, sync the directory. */
function placeDurably(temporary: string, target: string): void {
  fsyncPath(temporary);
  fs.renameSync(temporary, target);
  fsyncPath(path.dirname(target));
}

/** Writes `data` to `target` through a temporary name, so `target` is never half written. */
export function writeFileDurably(target: string, data: Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = `${target}.${process.pid}.partial`;
  fs.writeFileSync(temporary, data);
  placeDurably(temporary, target);
}

/** Copies `source` to `target` (a reflink where the file system can) through a temporary name. */
export function copyFileDurably(source: string, target: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = `${target}.${process.pid}.partial`;
  fs.copyFileSync(source, temporary, fs.constants.COPYFILE_FICLONE);
  placeDurably(temporary, target);
}

const sidecars = ['', '-journal', '-wal', '-shm'];

/** Removes a database file and the journal files SQLite keeps beside it; missing ones are fine. */
export function removeFileAndSidecars(file: string): void {
  let removed = false;
  for (const suffix of sidecars) {
    try {
      fs.unlinkSync(file + suffix);
      removed = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  if (removed) fsyncPath(path.dirname(file));
}
