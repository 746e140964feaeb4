// HTTP(S) and file:// fetches through got: the toolchain's only network door besides the package
// managers it runs. Timeouts and retries are explicit; a failure names the URL. got is loaded on
// the first HTTP request, not with this module: a run that fetches nothing (--offline, file://
// repositories) does not pay the 0.2 s of CPU loading it takes.
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import type { Got } from 'got';
import { StepError } from '../core/errors.js';

let gotLoaded: Got | undefined;

async function loadGot(): Promise<Got> {
  gotLoaded ??= (await import('got')).default;
  return gotLoaded;
}

export interface FetchOptions {
  /** Per attempt, for the whole request. */
  timeoutMs?: number;
  retries?: number;
}

/**
 * sha256 of a URL's content, streamed (upstream metadata can be megabytes), and its first
 * `headBytes` bytes, where metadata says when it was published (a Release file's Date field).
 */
export async function digestOf(url: string, o: FetchOptions & { headBytes?: number } = {}): Promise<{ sha256: string; head: Buffer }> {
  const hash = createHash('sha256');
  const keep = o.headBytes ?? 0;
  const head: Buffer[] = [];
  let kept = 0;
  try {
    const stream = url.startsWith('file:')
      ? createReadStream(fileURLToPath(url))
      : (await loadGot()).stream(url, {
          timeout: { request: o.timeoutMs ?? 30_000 },
          retry: { limit: o.retries ?? 3, methods: ['GET'] },
          headers: { 'user-agent': 'ost-images' },
        });
    for await (const chunk of stream) {
      const b = chunk as Buffer;
      hash.update(b);
      if (kept < keep) {
        head.push(b.subarray(0, keep - kept));
        kept += Math.min(b.length, keep - kept);
      }
    }
  } catch (err) {
    throw new StepError(`cannot fetch ${url}: ${(err as Error).message}; use --offline to plan with the last known digests`);
  }
  return { sha256: hash.digest('hex'), head: Buffer.concat(head) };
}

/** A whole (small) document: repomd.xml, primary.xml.gz. */
export async function fetchBytes(url: string, o: FetchOptions = {}): Promise<Buffer> {
  try {
    if (url.startsWith('file:')) return (await import('node:fs')).readFileSync(fileURLToPath(url));
    return await (await loadGot())(url, { timeout: { request: o.timeoutMs ?? 60_000 }, retry: { limit: o.retries ?? 3 }, headers: { 'user-agent': 'ost-images' } }).buffer();
  } catch (err) {
    throw new StepError(`cannot fetch ${url}: ${(err as Error).message}`);
  }
}

/**
 * Like fetchBytes, but a document that does not exist (HTTP 404 or 410, no such file) is undefined
 * rather than an error: a repository nobody has published into yet has no repomd.xml.
 */
export async function fetchBytesIfExists(url: string, o: FetchOptions = {}): Promise<Buffer | undefined> {
  try {
    if (url.startsWith('file:')) return (await import('node:fs')).readFileSync(fileURLToPath(url));
    return await (await loadGot())(url, { timeout: { request: o.timeoutMs ?? 60_000 }, retry: { limit: o.retries ?? 3 }, headers: { 'user-agent': 'ost-images' } }).buffer();
  } catch (err) {
    const e = err as { code?: string; response?: { statusCode?: number } };
    if (e.code === 'ENOENT' || e.response?.statusCode === 404 || e.response?.statusCode === 410) return undefined;
    throw new StepError(`cannot fetch ${url}: ${(err as Error).message}`);
  }
}

/** Downloads to `dest` (a temporary name the caller renames), returning the sha256 of the bytes. */
export async function download(url: string, dest: string, o: FetchOptions = {}): Promise<string> {
  const hash = createHash('sha256');
  try {
    const src = url.startsWith('file:')
      ? createReadStream(fileURLToPath(url))
      : (await loadGot()).stream(url, { timeout: { request: o.timeoutMs ?? 600_000 }, retry: { limit: o.retries ?? 3 }, headers: { 'user-agent': 'ost-images' } });
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
 * Returns the sha256 of the whole file, hashed as it arrives (an ISO is read once, not again after
 * the download). Retries itself, so got's own retry is off.
 */
export async function downloadResumable(url: string, partial: string, o: ResumableOptions = {}): Promise<string> {
  const attempts = o.attempts ?? 4;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      if (url.startsWith('file:')) {
        copyFileSync(fileURLToPath(url), partial);
        return await hashFile(partial);
      }
      return await fetchRest(url, partial, o.onProgress);
    } catch (err) {
      lastError = err as Error;
      if (attempt < attempts) await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  throw new StepError(`cannot download ${url} after ${attempts} attempts: ${lastError?.message}`);
}

type Response = { statusCode: number; headers: Record<string, string | string[] | undefined> };

async function hashFile(file: string, hash = createHash('sha256')): Promise<string> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * One attempt: appends what `partial` lacks (or rewrites it when the server cannot resume);
 * returns the sha256 of the whole file.
 */
async function fetchRest(url: string, partial: string, onProgress: ResumableOptions['onProgress']): Promise<string> {
  const have = existsSync(partial) ? statSync(partial).size : 0;
  // The part already on disk is hashed before the request (a slow hash must not eat the server's
  // patience), then every chunk as it arrives.
  const hash = createHash('sha256');
  if (have > 0) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  const stream = (await loadGot()).stream(url, {
    // Idle limits, not a deadline: got's `read` would abort any body that takes longer than it.
    timeout: { response: 60_000, socket: 120_000 },
    retry: { limit: 0 },
    headers: { 'user-agent': 'ost-images', ...(have > 0 ? { range: `bytes=${have}-` } : {}) },
  });
  let response: Response;
  try {
    response = await new Promise<Response>((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('error', reject);
    });
  } catch (err) {
    // 416: an earlier attempt got it all already; the caller's checksum decides.
    if (have > 0 && (err as { response?: { statusCode?: number } }).response?.statusCode === 416) {
      stream.destroy();
      return hash.digest('hex');
    }
    throw err;
  }
  const resumed = have > 0 && response.statusCode === 206;
  const length = Number(response.headers['content-length']);
  const total = Number.isFinite(length) ? length + (resumed ? have : 0) : undefined;
  const fresh = resumed ? hash : createHash('sha256');
  let done = resumed ? have : 0;
  stream.on('data', (chunk: Buffer) => {
    fresh.update(chunk);
    done += chunk.length;
    onProgress?.(done, total);
  });
  await pipeline(stream, createWriteStream(partial, { flags: resumed ? 'a' : 'w' }));
  if (total !== undefined && statSync(partial).size !== total) throw new Error(`got ${statSync(partial).size} of ${total} bytes`);
  return fresh.digest('hex');
}
