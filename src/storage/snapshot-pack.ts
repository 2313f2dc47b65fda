import fs from 'node:fs';
import path from 'node:path';
import { placeDurably, temporaryOf } from './files.js';

/** Where one file's image sits in a snapshot pack, and the SQLite change counter its header had. */
export interface PackEntry {
  offset: number;
  length: number;
  counter: number;
}

/** Runs `fn` on `file` opened for reading; `absent` when it cannot be opened. */
function readingFile<T>(file: string, absent: T, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return absent;
  }
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Copies `length` bytes from `from` at `fromAt` to `to` at `toAt`, a chunk at a time; the bytes copied (fewer if `from` ends first). */
function copyRange(from: number, fromAt: number, to: number, toAt: number, length: number): number {
  const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(chunkBytes, length)));
  let copied = 0;
  while (copied < length) {
    const n = fs.readSync(from, chunk, 0, Math.min(chunk.length, length - copied), fromAt + copied);
    if (n === 0) break;
    fs.writeSync(to, chunk, 0, n, toAt + copied);
    copied += n;
  }
  return copied;
}

const magic = Buffer.from('FQLPACK1');
const trailerBytes = 4 + magic.length;
const chunkBytes = 1 << 20;

/**
 * A snapshot pack: the images of many files in one file, so a batch of snapshots costs one fsync
 * where separate files cost one each (on this kind of disk most of what a snapshot costs). Layout:
 * the images one after another, then a JSON index `{ id: [offset, length, counter] }`, its byte
 * length (u32 BE) and a magic. Written under a temporary name, synced, renamed, its directory
 * synced: a pack is whole or absent.
 */
export class PackWriter {
  readonly #target: string;
  readonly #temporary: string;
  readonly #fd: number;
  readonly #index: Record<string, [number, number, number]> = {};
  #offset = 0;

  constructor(target: string) {
    this.#target = target;
    this.#temporary = temporaryOf(target);
    this.#fd = fs.openSync(this.#temporary, 'w');
  }

  get entries(): number {
    return Object.keys(this.#index).length;
  }

  /**
   * Appends the image of SQLite file `file` (copied in chunks, whatever its size); false, adding
   * nothing, when it cannot be read or is not a rollback-journal database (a WAL file's state is
   * not in the file alone).
   */
  addFile(id: string, file: string): boolean {
    return readingFile(file, false, (fd) => {
      const size = fs.fstatSync(fd).size;
      const header = Buffer.alloc(100);
      if (size < header.length || fs.readSync(fd, header, 0, header.length, 0) !== header.length) return false;
      if (header.subarray(0, 16).toString('latin1') !== 'SQLite format 3\u0000' || header[18] === 2) return false;
      const copied = copyRange(fd, 0, this.#fd, this.#offset, size);
      this.#index[id] = [this.#offset, copied, header.readUInt32BE(24)];
      this.#offset += copied;
      return true;
    });
  }

  /** Makes the pack durable at its name and returns its entries; with no entry, leaves no file. */
  finish(): Map<string, PackEntry> {
    if (this.entries === 0) {
      this.abort();
      return new Map();
    }
    try {
      const index = Buffer.from(JSON.stringify(this.#index));
      const trailer = Buffer.alloc(trailerBytes);
      trailer.writeUInt32BE(index.length, 0);
      magic.copy(trailer, 4);
      const tail = Buffer.concat([index, trailer]);
      fs.writeSync(this.#fd, tail, 0, tail.length, this.#offset);
      fs.closeSync(this.#fd);
    } catch (error) {
      this.abort();
      throw error;
    }
    placeDurably(this.#temporary, this.#target);
    return entriesOf(this.#index);
  }

  abort(): void {
    try {
      fs.closeSync(this.#fd);
    } catch {
      // closed already
    }
    fs.rmSync(this.#temporary, { force: true });
  }
}

function entriesOf(index: Record<string, [number, number, number]>): Map<string, PackEntry> {
  return new Map(Object.entries(index).map(([id, [offset, length, counter]]) => [id, { offset, length, counter }]));
}

/** The entries of a pack, or undefined when `file` is not a whole pack. */
export function readPackIndex(file: string): Map<string, PackEntry> | undefined {
  return readingFile(file, undefined, (fd) => {
    try {
      const size = fs.fstatSync(fd).size;
      if (size < trailerBytes) return undefined;
      const trailer = Buffer.alloc(trailerBytes);
      fs.readSync(fd, trailer, 0, trailerBytes, size - trailerBytes);
      if (!trailer.subarray(4).equals(magic)) return undefined;
      const indexBytes = trailer.readUInt32BE(0);
      if (indexBytes > size - trailerBytes) return undefined;
      const index = Buffer.alloc(indexBytes);
      fs.readSync(fd, index, 0, indexBytes, size - trailerBytes - indexBytes);
      return entriesOf(JSON.parse(index.toString('utf8')) as Record<string, [number, number, number]>);
    } catch {
      return undefined;
    }
  });
}

/** Whether `file` holds exactly the bytes of `entry` in `pack` (read in chunks, whatever the size). */
export function sameAsPackEntry(file: string, pack: string, entry: PackEntry): boolean {
  const fileFd = fs.openSync(file, 'r');
  try {
    if (fs.fstatSync(fileFd).size !== entry.length) return false;
    const packFd = fs.openSync(pack, 'r');
    try {
      const a = Buffer.allocUnsafe(Math.min(chunkBytes, entry.length));
      const b = Buffer.allocUnsafe(a.length);
      for (let at = 0; at < entry.length; at += a.length) {
        const n = Math.min(a.length, entry.length - at);
        if (fs.readSync(fileFd, a, 0, n, at) !== n || fs.readSync(packFd, b, 0, n, entry.offset + at) !== n) return false;
        if (!a.subarray(0, n).equals(b.subarray(0, n))) return false;
      }
      return true;
    } finally {
      fs.closeSync(packFd);
    }
  } finally {
    fs.closeSync(fileFd);
  }
}

/** Writes the image of `entry` in `pack` at `target` through a temporary name: synced, renamed, directory synced. */
export function restorePackEntryDurably(pack: string, entry: PackEntry, target: string): void {
  const temporary = temporaryOf(target);
  try {
    const packFd = fs.openSync(pack, 'r');
    try {
      const out = fs.openSync(temporary, 'w');
      try {
        if (copyRange(packFd, entry.offset, out, 0, entry.length) !== entry.length) throw new Error(`snapshot pack ${path.basename(pack)} is shorter than its index says`);
      } finally {
        fs.closeSync(out);
      }
    } finally {
      fs.closeSync(packFd);
    }
    placeDurably(temporary, target);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}
