// Base-image downloads against a real HTTP server on 127.0.0.1 serving a small qcow2: a matching
// checksum is cached and the next build needs no request; a mismatch is refused and nothing is
// kept; a download cut off halfway is resumed with a Range request, within one run and across
// runs; checksum files in both common formats give the expected sha256.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedPath, expectedSha256, fetchCached, parseChecksumFile } from '../../src/builder/download.js';
import { StepError } from '../../src/core/errors.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { serveFiles, type RangeServer } from '../helpers/range-server.js';
import { writePattern } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('download');
let image: Buffer;
let sha: string;
let server: RangeServer;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  const f = path.join(tmp, 'small.qcow2');
  await qemuImg.create(f, { size: 64 * 1024 ** 2 });
  for (let i = 0; i < 4; i++) writePattern(f, i * 4, 0x31 + i);
  image = readFileSync(f);
  sha = sha256(image);
  server = await serveFiles({
    '/images/small.qcow2': image,
    '/images/SHA256SUM': Buffer.from(`# CentOS style\nSHA256 (other.qcow2) = ${'0'.repeat(64)}\nSHA256 (small.qcow2) = ${sha}\n`),
    '/images/sums.txt': Buffer.from(`${'1'.repeat(64)}  other.qcow2\n${sha} *small.qcow2\n`),
  });
});

afterAll(async () => {
  await server?.stop();
  removeTree(tmp);
});

describe('checksum files', () => {
  it('give the sha256 of the named file, in BSD and GNU format', async () => {
    expect(parseChecksumFile(`SHA256 (a.iso) = ${'A'.repeat(64)}\n`, 'a.iso')).toBe('a'.repeat(64));
    expect(parseChecksumFile(`${'b'.repeat(64)}  dir/b.iso\n`, 'b.iso')).toBe('b'.repeat(64));
    expect(parseChecksumFile(`${'b'.repeat(64)}  b.iso\n`, 'c.iso')).toBeUndefined();
    const url = `${server.url}/images/small.qcow2`;
    expect(await expectedSha256({ url, checksumUrl: `${server.url}/images/SHA256SUM` })).toBe(sha);
    expect(await expectedSha256({ url, checksumUrl: `${server.url}/images/sums.txt` })).toBe(sha);
  });
});

describe('fetchCached', () => {
  it('downloads, verifies and caches by checksum; the next use makes no request', async () => {
    const cache = path.join(tmp, 'cache1');
    const before = server.requests.length;
    const r = await fetchCached(`${server.url}/images/small.qcow2`, sha, cache);
    expect(r).toEqual({ file: cachedPath(cache, sha), fromCache: false });
    expect(sha256(readFileSync(r.file))).toBe(sha);
    expect(server.requests.length).toBe(before + 1);
    const again = await fetchCached(`${server.url}/images/small.qcow2`, sha, cache);
    expect(again.fromCache).toBe(true);
    expect(server.requests.length).toBe(before + 1);
  });

  it('refuses a file whose checksum does not match and keeps nothing', async () => {
    const cache = path.join(tmp, 'cache2');
    const wrong = 'f'.repeat(64);
    const err = await fetchCached(`${server.url}/images/small.qcow2`, wrong, cache).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepError);
    expect((err as Error).message).toContain(`sha256 ${sha} does not match the expected ${wrong}; the download was deleted`);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('resumes a download cut off halfway with a Range request, in the same run', async () => {
    const cache = path.join(tmp, 'cache3');
    server.cutNext('/images/small.qcow2', Math.floor(image.length / 2));
    const from = server.requests.length;
    const r = await fetchCached(`${server.url}/images/small.qcow2`, sha, cache);
    expect(sha256(readFileSync(r.file))).toBe(sha);
    const reqs = server.requests.slice(from);
    // The second request asks only for what had not arrived (the cut may lose bytes in flight).
    expect(reqs).toHaveLength(2);
    expect(reqs[0]!.range).toBeUndefined();
    const resumedAt = Number(/^bytes=([0-9]+)-$/.exec(reqs[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(Math.floor(image.length / 2));
  });

  it('resumes what an interrupted earlier run left, and refuses a partial file that turns out wrong', async () => {
    const cache = path.join(tmp, 'cache4');
    const partial = path.join(cache, `.sha256-${sha}.partial`);
    (await import('node:fs')).mkdirSync(cache, { recursive: true });
    writeFileSync(partial, image.subarray(0, 1000));
    const from = server.requests.length;
    await fetchCached(`${server.url}/images/small.qcow2`, sha, cache);
    expect(server.requests.slice(from).map((q) => q.range)).toEqual(['bytes=1000-']);
    expect(existsSync(partial)).toBe(false);
    // A corrupt partial (e.g. from another file) is caught by the checksum and dropped entirely.
    const cache5 = path.join(tmp, 'cache5');
    (await import('node:fs')).mkdirSync(cache5, { recursive: true });
    writeFileSync(path.join(cache5, `.sha256-${sha}.partial`), Buffer.alloc(1000, 0x55));
    await expect(fetchCached(`${server.url}/images/small.qcow2`, sha, cache5)).rejects.toThrow(/does not match/);
    expect(readdirSync(cache5)).toEqual([]);
  });
});
