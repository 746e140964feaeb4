// HTTP(S) and file:// fetches through got: the toolchain's only network door besides the package
// managers it runs. Timeouts and retries are explicit; a failure names the URL.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
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

export interface ResumableOptions {
  /** Attempts in all; each one resumes where the last stopped. */
  attempts?: number;
  /** Called as bytes arrive: bytes so far, total if the server said. */
  onProgress?: (done: number, total: number | undefined) => void;
}

/**
 * Downloads `url` into `partial`, resuming what an earlier (interrupted) attempt left there with an
 * HTTP Range request; a server that ignores the range (200 instead of 206) makes it start over.
 * Returns the sha256 of the whole file. Retries itself, so got's own retry is off.
 */
export async function downloadResumable(url: string, partial: string, o: ResumableOptions = {}): Promise<string> {
  const { createWriteStream, existsSync, statSync } = await import('node:fs');
  const attempts = o.attempts ?? 4;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const have = existsSync(partial) ? statSync(partial).size : 0;
    try {
      if (url.startsWith('file:')) {
        const { copyFileSync } = await import('node:fs');
        copyFileSync(fileURLToPath(url), partial);
      } else {
        const stream = got.stream(url, {
          timeout: { response: 60_000, read: 120_000 },
          retry: { limit: 0 },
          headers: { 'user-agent': 'ost-images', ...(have > 0 ? { range: `bytes=${have}-` } : {}) },
        });
        let response: { statusCode: number; headers: Record<string, string | string[] | undefined> };
        try {
          response = await new Promise((resolve, reject) => {
            stream.once('response', resolve);
            stream.once('error', reject);
          });
        } catch (err) {
          // 416: the earlier attempt had it all already; the checksum below decides.
          if (have > 0 && (err as { response?: { statusCode?: number } }).response?.statusCode === 416) response = { statusCode: 416, headers: {} };
          else throw err;
        }
        if (response.statusCode === 416) {
          stream.destroy();
        } else {
        const resumed = have > 0 && response.statusCode === 206;
        const length = Number(response.headers['content-length']);
        const total = Number.isFinite(length) ? length + (resumed ? have : 0) : undefined;
        let done = resumed ? have : 0;
        stream.on('data', (chunk: Buffer) => {
          done += chunk.length;
          o.onProgress?.(done, total);
        });
        await pipeline(stream, createWriteStream(partial, { flags: resumed ? 'a' : 'w' }));
        if (total !== undefined && statSync(partial).size !== total) throw new Error(`got ${statSync(partial).size} of ${total} bytes`);
        }
      }
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
      return hash.digest('hex');
    } catch (err) {
      lastError = err as Error;
      if (attempt < attempts) await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  throw new StepError(`cannot download ${url} after ${attempts} attempts: ${lastError?.message}`);
}
