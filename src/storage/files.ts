import fs from 'node:fs';
import path from 'node:path';

/** Makes a rename or unlink in `dir` durable: without it a crash can bring the old entry back. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
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
  if (removed) fsyncDirectory(path.dirname(file));
}

/** Flushes a file's contents to disk (before it is renamed into place). */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
