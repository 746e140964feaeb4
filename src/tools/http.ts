// HTTP(S) and file:// fetches through got: the toolchain's only network door besides the package
// managers it runs. Timeouts and retries are explicit; a failure names the URL.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import got from 'got';
import { StepError } from '../errors.js';

export interface FetchOptions {
  /** Per attempt, for the whole request. */
  timeoutMs?: number;
  retries?: number;
}

/** sha256 of a URL's content, streamed (upstream metadata can be megabytes). */
export async function digestOf(url: string, o: FetchOptions = {}): Promise<string> {
  const hash = createHash('sha256');
  try {
    const stream = url.startsWith('file:')
      ? createReadStream(fileURLToPath(url))
      : got.stream(url, {
          timeout: { request: o.timeoutMs ?? 30_000 },
          retry: { limit: o.retries ?? 3, methods: ['GET'] },
          headers: { 'user-agent': 'ost-images' },
        });
    for await (const chunk of stream) hash.update(chunk as Buffer);
  } catch (err) {
    throw new StepError(`cannot fetch ${url}: ${(err as Error).message}; use --offline to plan with the last known digests`);
  }
  return hash.digest('hex');
}

/** A whole (small) document: repomd.xml, primary.xml.gz. */
export async function fetchBytes(url: string, o: FetchOptions = {}): Promise<Buffer> {
  try {
    if (url.startsWith('file:')) return (await import('node:fs')).readFileSync(fileURLToPath(url));
    return await got(url, { timeout: { request: o.timeoutMs ?? 60_000 }, retry: { limit: o.retries ?? 3 }, headers: { 'user-agent': 'ost-images' } }).buffer();
  } catch (err) {
    throw new StepError(`cannot fetch ${url}: ${(err as Error).message}`);
  }
}

/** Downloads to `dest` (a temporary name the caller renames), returning the sha256 of the bytes. */
export async function download(url: string, dest: string, o: FetchOptions = {}): Promise<string> {
  const { createWriteStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  const hash = createHash('sha256');
  try {
    const src = url.startsWith('file:')
      ? createReadStream(fileURLToPath(url))
      : got.stream(url, { timeout: { request: o.timeoutMs ?? 600_000 }, retry: { limit: o.retries ?? 3 }, headers: { 'user-agent': 'ost-images' } });
    src.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(src, createWriteStream(dest));
  } catch (err) {
    throw new StepError(`cannot download ${url}: ${(err as Error).message}`);
  }
  return hash.digest('hex');
}
