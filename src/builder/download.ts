// Downloads of base images (cloud images, installer ISOs): checked against a sha256 given in the
// definition or read from the distribution's checksum file, kept in a cache keyed by that checksum
// (`<store>/downloads/sha256-<hex>`), resumed after an interruption (the partial file stays under
// a name derived from the checksum, so the next run continues it), with a progress line on a
// terminal. A file whose checksum does not match is deleted: nothing unverified is ever kept.
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { StepError } from '../core/errors.js';
import { log, progressLine } from '../core/log.js';
import { downloadResumable, fetchBytes } from '../tools/http.js';

/**
 * The sha256 a checksum file gives for `fileName`, in either common format:
 * GNU `<hex>  <name>` (or `<hex> *<name>`) and BSD `SHA256 (<name>) = <hex>`.
 */
export function parseChecksumFile(text: string, fileName: string): string | undefined {
  for (const line of text.split('\n')) {
    const gnu = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
    if (gnu && path.basename(gnu[2]!) === fileName) return gnu[1]!.toLowerCase();
    const bsd = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/.exec(line.trim());
    if (bsd && path.basename(bsd[1]!) === fileName) return bsd[2]!.toLowerCase();
  }
  return undefined;
}

export interface ImageSource {
  url: string;
  sha256?: string;
  checksumUrl?: string;
}

/** The expected sha256: as given, or read from the checksum file for the URL's file name. */
export async function expectedSha256(src: ImageSource): Promise<string> {
  if (src.sha256) return src.sha256;
  const name = decodeURIComponent(path.basename(new URL(src.url).pathname));
  const text = (await fetchBytes(src.checksumUrl!)).toString('utf8');
  const sha = parseChecksumFile(text, name);
  if (!sha) throw new StepError(`${src.checksumUrl} lists no sha256 for ${name}`);
  return sha;
}

export const cachedPath = (cacheDir: string, sha256: string): string => path.join(cacheDir, `sha256-${sha256}`);

/** The verified file for `url`, from the cache when it holds one with this checksum. */
export async function fetchCached(url: string, sha256: string, cacheDir: string): Promise<{ file: string; fromCache: boolean }> {
  const file = cachedPath(cacheDir, sha256);
  if (existsSync(file)) {
    log.info(`using cached ${path.basename(url)} (sha256 ${sha256.slice(0, 12)}...)`);
    return { file, fromCache: true };
  }
  mkdirSync(cacheDir, { recursive: true });
  const partial = path.join(cacheDir, `.sha256-${sha256}.partial`);
  const resuming = existsSync(partial) ? statSync(partial).size : 0;
  log.info(`downloading ${url}${resuming ? ` (resuming after ${(resuming / 2 ** 20).toFixed(0)} MiB)` : ''}`);
  const bar = progressLine(`downloading ${path.basename(url)}`);
  const t0 = Date.now();
  let got: string;
  try {
    got = await downloadResumable(url, partial, {
      onProgress: (done, total) => {
        const rate = done / 2 ** 20 / Math.max(0.001, (Date.now() - t0) / 1000);
        bar.update(total ? `${((done / total) * 100).toFixed(0)}% (${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB, ${rate.toFixed(1)} MiB/s)` : `${(done / 2 ** 20).toFixed(0)} MiB`);
      },
    });
  } finally {
    bar.done();
  }
  if (got !== sha256) {
    rmSync(partial, { force: true });
    throw new StepError(`${url}: sha256 ${got} does not match the expected ${sha256}; the download was deleted`);
  }
  renameSync(partial, file);
  log.info(`downloaded ${path.basename(url)} (${(statSync(file).size / 2 ** 20).toFixed(0)} MiB, sha256 verified)`);
  return { file, fromCache: false };
}
