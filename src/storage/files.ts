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

/** Where a file is written before `placeDurably` makes it `target`: a crash never leaves `target` half written. */
function temporaryOf(target: string): string {
  return `${target}.${process.pid}.partial`;
}

/** Makes `temporary` (fully written) the file at `target`: sync, rename, sync the directory. */
export function placeDurably(temporary: string, target: string): void {
  fsyncPath(temporary);
  fs.renameSync(temporary, target);
  fsyncPath(path.dirname(target));
}

/** Writes `data` to `target` through a temporary name, so `target` is never half written. */
export function writeFileDurably(target: string, data: Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = temporaryOf(target);
  fs.writeFileSync(temporary, data);
  placeDurably(temporary, target);
}

/** Copies `source` to `target` (a reflink where the file system can) through a temporary name. */
export function copyFileDurably(source: string, target: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temporary = temporaryOf(target);
  fs.copyFileSync(source, temporary, fs.constants.COPYFILE_FICLONE);
  placeDurably(temporary, target);
}

/**
 * Copies `source` over `target`, a file whose directory entry is already on disk (see
 * `createFilesDurably`), and syncs it: one fsync where a new file takes two (its data, then its
 * directory). The copy keeps `target`'s inode, so its directory entry stays what was synced.
 * Returns false, copying nothing, when `target` does not exist.
 */
export function copyOverDurably(source: string, target: string): boolean {
  if (!fs.existsSync(target)) return false;
  fs.copyFileSync(source, target);
  fsyncPath(target);
  return true;
}

/** Creates `dir` and its missing parents, each new directory's entry synced in its parent. */
function makeDirDurably(dir: string): void {
  const created = fs.mkdirSync(dir, { recursive: true });
  if (created === undefined) return;
  // Sync from the deepest up to the first that existed.
  for (let at = dir; at !== path.dirname(created); at = path.dirname(at)) fsyncPath(path.dirname(at));
}

/** Runs `make`, an entry that exists already being left as it is. */
function unlessExists(make: () => void): void {
  try {
    make();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * Creates `dir` (and its missing parents) and, in it, an empty file for each name not there yet,
 * then syncs the directory once: every entry is on disk after one directory fsync, however many
 * files (fill them with `copyOverDurably`).
 */
export function createFilesDurably(dir: string, names: readonly string[]): void {
  makeDirDurably(dir);
  for (const name of names) unlessExists(() => fs.closeSync(fs.openSync(path.join(dir, name), 'wx')));
  fsyncPath(dir);
}

/**
 * Gives each `source` a second name in `dir` (a hard link: no data is copied), then syncs the
 * directory once. A name already there is left as it is; a source that is missing, skipped.
 * Throws where the file system cannot link them (another device, no hard links).
 */
export function linkFilesDurably(dir: string, links: ReadonlyArray<{ source: string; name: string }>): void {
  makeDirDurably(dir);
  for (const { source, name } of links) {
    try {
      unlessExists(() => fs.linkSync(source, path.join(dir, name)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  fsyncPath(dir);
}

/** Makes `target` durably a second name of `source`'s file, replacing whatever `target` was (through a temporary name, so it is one or the other). */
export function linkDurably(source: string, target: string): void {
  makeDirDurably(path.dirname(target));
  const temporary = temporaryOf(target);
  fs.rmSync(temporary, { force: true });
  fs.linkSync(source, temporary);
  fs.renameSync(temporary, target);
  fsyncPath(path.dirname(target));
}

/** Whether `error` says the file system cannot hard-link there (another device, no hard links, too many). */
export function cannotLink(error: unknown): boolean {
  return ['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes((error as NodeJS.ErrnoException).code ?? '');
}

/** Whether two paths name the same file (one inode, two links). */
export function sameFile(a: string, b: string): boolean {
  const first = fs.statSync(a, { throwIfNoEntry: false });
  const second = fs.statSync(b, { throwIfNoEntry: false });
  return first !== undefined && second !== undefined && first.ino === second.ino && first.dev === second.dev;
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
