// What the status page says about each build beyond its header: the image's size, when it was
// built, its guest's package changes against its parent. These live inside the package (the build
// record and the package diff ship beside the image, see package/spec.ts), and promotion in CI has
// no builder store to read them from, so they are taken out of each package once, when it enters
// the repository, and kept with the snapshot (`builds.json`). Later snapshots carry them forward:
// a package already published is never unpacked again (unpacking reads its whole payload).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { PackageDiff } from '../records/package-diff.js';
import { writeJsonAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { releaseTime } from '../records/build.js';
import type { BuildRecord } from '../records/build.js';
import { extractPayload, payloadFacts } from '../tools/rpm-payload.js';
import { POOL, type PackageEntry } from './snapshot.js';

export const BUILDS_FILE = 'builds.json';

export interface BuildFacts {
  /** The package's Summary (the layer's description is in it). */
  summary: string;
  /** When the image was built (the build record's time), else when the package was. */
  builtAt: string;
  /** The qcow2 the package installs: its file name and size in bytes. */
  image?: { file: string; bytes: number };
  /** The guest's virtual disk size, from the build record. */
  virtualSize?: number;
  /** Package changes against the parent layer's guest, as the build recorded them. */
  diff?: Pick<PackageDiff, 'added' | 'removed' | 'upgraded' | 'downgraded' | 'unchanged' | 'flagged'>;
}

export interface BuildsIndex {
  schema: 1;
  /** By pool file name. */
  builds: Record<string, BuildFacts>;
}

export function readBuilds(snapDir: string): BuildsIndex {
  const file = path.join(snapDir, BUILDS_FILE);
  if (!existsSync(file)) return { schema: 1, builds: {} };
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BuildsIndex;
  } catch (err) {
    // The facts are for the page only: a damaged file costs one extraction, not a publish.
    log.warn(`ignoring unreadable ${file}: ${(err as Error).message}`);
    return { schema: 1, builds: {} };
  }
}

/** Pure: the facts of one package from its header query and the files taken out of it. */
export function factsFrom(payload: { summary: string; buildTime: number; files: { path: string; bytes: number }[] }, record?: BuildRecord, diff?: PackageDiff): BuildFacts {
  const image = payload.files.find((f) => f.path.endsWith('.qcow2'));
  const facts: BuildFacts = {
    summary: payload.summary,
    // Packages since reproducible builds ship no run times: the release stamp is the build's start.
    builtAt: record?.builtAt ?? (record ? releaseTime(record.release) : undefined) ?? new Date(payload.buildTime * 1000).toISOString(),
  };
  if (image) facts.image = { file: path.posix.basename(image.path), bytes: image.bytes };
  if (record?.virtualSize) facts.virtualSize = record.virtualSize;
  if (diff && Array.isArray(diff.added)) {
    facts.diff = { added: diff.added, removed: diff.removed ?? [], upgraded: diff.upgraded ?? [], downgraded: diff.downgraded ?? [], unchanged: diff.unchanged ?? 0 };
    if (diff.flagged) facts.diff.flagged = diff.flagged;
  }
  return facts;
}

function readJson<T>(file: string | undefined): T | undefined {
  if (!file) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Reads the facts of one package file: its header, and the two small JSON files in its payload. */
export async function extractFacts(rpm: string, scratchParent: string): Promise<BuildFacts> {
  const payload = await payloadFacts(rpm);
  const wanted = payload.files.filter((f) => f.path.endsWith('.build.json') || f.path.endsWith('.package-diff.json'));
  if (wanted.length === 0) return factsFrom(payload);
  const scratch = mkdtempSync(path.join(scratchParent, '.facts-'));
  try {
    // The image stays out: it is nearly all of the payload. (Only files by their full name: an
    // excluded path is a prefix, and the directory's would take everything.)
    await extractPayload(rpm, scratch, payload.files.filter((f) => f.path.endsWith('.qcow2')).map((f) => f.path));
    const at = (suffix: string): string | undefined => {
      const f = wanted.find((w) => w.path.endsWith(suffix));
      return f && path.join(scratch, f.path);
    };
    return factsFrom(payload, readJson<BuildRecord>(at('.build.json')), readJson<PackageDiff>(at('.package-diff.json')));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The facts of every package of a snapshot being built in `snapDir` (its packages hard-linked under
 * `packages/`): carried from `carried` (the served snapshot's) where known, else read from the
 * package. Written to the snapshot's builds.json. Never fails a publish: a package whose facts
 * cannot be read is shown with what its header says.
 */
export async function collectBuilds(snapDir: string, packages: PackageEntry[], carried: BuildsIndex): Promise<{ index: BuildsIndex; extracted: string[]; seconds: number }> {
  const t0 = Date.now();
  const index: BuildsIndex = { schema: 1, builds: {} };
  const extracted: string[] = [];
  for (const p of packages) {
    const known = carried.builds[p.file];
    if (known) {
      index.builds[p.file] = known;
      continue;
    }
    const file = path.join(snapDir, POOL, p.file);
    if (!existsSync(file)) continue;
    try {
      index.builds[p.file] = await extractFacts(file, snapDir);
      extracted.push(p.file);
    } catch (err) {
      log.warn(`status page: cannot read the build facts of ${p.file}: ${(err as Error).message}`);
    }
  }
  writeJsonAtomic(path.join(snapDir, BUILDS_FILE), index);
  // The scratch roots live in the snapshot directory so a killed publisher's are removed with it.
  for (const f of readdirSync(snapDir)) if (f.startsWith('.facts-')) rmSync(path.join(snapDir, f), { recursive: true, force: true });
  const seconds = (Date.now() - t0) / 1000;
  if (extracted.length > 0) log.info(`read the build facts of ${extracted.length} new package(s) in ${seconds.toFixed(1)} s`);
  return { index, extracted, seconds };
}
