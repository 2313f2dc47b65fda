import { DeleteObjectCommand, GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FleetqlError } from '../errors.js';
import type { ArchiveStore } from './archive-store.js';

export interface S3ArchiveStoreOptions {
  bucket: string;
  /** Prepended to every key, e.g. `fleetql/prod/`. */
  prefix: string;
  region: string;
  /** For S3-compatible stores (MinIO, R2, …); path-style addressing is used with it. */
  endpoint?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  /** Per request; an unreachable store fails fast instead of hanging a mutation. */
  timeoutMs: number;
}

/** Archives as objects in any S3-compatible store, through the AWS SDK. */
export class S3ArchiveStore implements ArchiveStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly description: string;

  constructor(options: S3ArchiveStoreOptions) {
    this.#bucket = options.bucket;
    this.#prefix = options.prefix;
    this.#timeoutMs = options.timeoutMs;
    this.description = `s3://${options.bucket}/${options.prefix}${options.endpoint ? ` at ${options.endpoint}` : ''}`;
    this.#client = new S3Client({
      region: options.region,
      maxAttempts: 2,
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      ...(options.accessKeyId && options.secretAccessKey ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } } : {}),
    });
  }

  #unavailable(error: unknown, doing: string): FleetqlError {
    return new FleetqlError('ARCHIVE_STORE_UNAVAILABLE', `the archive store (${this.description}) failed to ${doing}`, { cause: error });
  }

  async put(key: string, body: Buffer): Promise<void> {
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key, Body: body, ContentLength: body.length }), { abortSignal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw this.#unavailable(error, 'store an object');
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }), { abortSignal: AbortSignal.timeout(this.#timeoutMs) });
      if (response.Body === undefined) throw new Error('empty response body');
      return Buffer.from(await response.Body.transformToByteArray());
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') throw new FleetqlError('ARCHIVE_NOT_FOUND', `archive object ${key} is missing from the store`);
      throw this.#unavailable(error, 'read an object');
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }), { abortSignal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw this.#unavailable(error, 'delete an object');
    }
  }
}
