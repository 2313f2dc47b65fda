/**
 * Where archives live. Keys are relative paths (`instances/<id>/<archive>.db.gz`); a store never
 * interprets them. Every method fails with ARCHIVE_STORE_UNAVAILABLE when the store cannot be
 * reached, and `get` with ARCHIVE_NOT_FOUND when the key holds nothing.
 */
export interface ArchiveStore {
  /** For logs and the API: which store, without secrets. */
  readonly description: string;
  /** Stores `body` under `key`, whole or not at all. */
  put(key: string, body: Buffer): Promise<void>;
  get(key: string): Promise<Buffer>;
  delete(key: string): Promise<void>;
}
