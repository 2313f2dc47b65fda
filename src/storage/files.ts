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
  for (const suffix of sidecars) fs.rmSync(file + suffix, { force: true });
  fsyncDirectory(path.dirname(file));
}
