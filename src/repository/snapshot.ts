// The layout of a published repository and the operations that keep it consistent:
//
//   repo/current -> .snapshots/<stamp>              the switch: the one link swapped by rename(2)
//   repo/repodata -> current/repodata               what dnf reads (a static link)
//   repo/index.html -> current/index.html           the status page (a static link)
//   repo/packages/<nvra>.rpm                        the pool: every package a kept snapshot lists
//   repo/.snapshots/<stamp>/packages/               hard links of that snapshot's packages
//   repo/.snapshots/<stamp>/repodata/               createrepo_c's metadata (+ repomd.xml.asc)
//   repo/.snapshots/<stamp>/snapshot.json           its index: packages with their Provides and
//                                                   Requires, the snapshot it replaced, signer
//   repo/.snapshots/<stamp>/builds.json             facts read once from each package's payload
//   repo/.snapshots/<stamp>/index.html              the status page describing this snapshot
//   repo/history.json                               the last nightly runs and promotions
//   repo/RPM-GPG-KEY-ost-images, repo/ost-images.repo   what a test machine configures
//
// One link switches the metadata and the page that describes it together: both static links
// resolve through `current`, so no reader sees the page of one snapshot beside the metadata of
// another. Repositories made before `current` existed point `repodata` straight at a snapshot's
// metadata; servedStamp reads that form, and the next switch migrates it (see switchTo). A mirror
// copies the links as links, so it switches the same way.
//
// Metadata hrefs ("packages/<file>") resolve against the pool from the served root, so a client
// that read repomd.xml just before a switch still finds every file it names: a snapshot's
// packages stay in the pool while the snapshot is kept (the served one, the one it replaced, and
// any retired less than a grace period ago). A snapshot's own hard links let `--rollback`
// restore its packages to the pool even after retention removed them from there.
import { existsSync, linkSync, lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError } from '../core/errors.js';
import { parseNumber, type NumberRule } from '../input/numbers.js';
import { faultAt, faultPoint, killSelf, stopProcesses } from '../input/test-hooks.js';
import { writeJsonAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { pidsUsing } from '../core/proc.js';
import type { PackageDeps } from '../core/rpmdeps.js';

export const SNAPSHOTS = '.snapshots';
export const POOL = 'packages';
export const PUBLIC_KEY_FILE = 'RPM-GPG-KEY-ost-images';
export const REPO_FILE = 'ost-images.repo';

/** What OST_IMAGES_SNAPSHOT_GRACE may be: whole seconds, up to a year. */
export const GRACE: NumberRule = { what: 'a whole number of seconds', whole: true, min: 0, max: 365 * 86400 };

/**
 * A snapshot retired less than this long ago is kept, for clients still reading its metadata.
 * A bad OST_IMAGES_SNAPSHOT_GRACE is bad input: publish reads it before it writes anything.
 */
export function graceSeconds(): number {
  const env = process.env.OST_IMAGES_SNAPSHOT_GRACE;
  return env === undefined || env === '' ? 600 : parseNumber('OST_IMAGES_SNAPSHOT_GRACE', env, GRACE);
}

export interface PackageEntry extends PackageDeps {
  /** File name in the pool. */
  file: string;
  size: number;
  /** Fingerprint of the key that signed it, if signed by the repository's key. */
  signedBy?: string;
}

export interface SnapshotRecord {
  schema: 1;
  stamp: string;
  created: string;
  /** The snapshot this one replaced (what --rollback returns to). */
  previous?: string;
  /** Fingerprint of the key that signed repomd.xml and every package, if signed. */
  signedBy?: string;
  added: string[];
  removed: string[];
  packages: PackageEntry[];
}

export const snapshotsDir = (repo: string): string => path.join(repo, SNAPSHOTS);
export const snapshotDir = (repo: string, stamp: string): string => path.join(repo, SNAPSHOTS, stamp);
export const poolDir = (repo: string): string => path.join(repo, POOL);

export const CURRENT = 'current';
export const INDEX_HTML = 'index.html';
/** The static links at the repository root, resolved through `current`. */
const STATIC_LINKS = ['repodata', INDEX_HTML] as const;

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The stamp of the snapshot being served, if any: what `repodata` (the link dnf reads) resolves
 * to, through `current`, or straight to a snapshot in a repository of the older layout.
 */
export function servedStamp(repo: string): string | undefined {
  const link = path.join(repo, 'repodata');
  let target: string;
  try {
    if (!lstatSync(link).isSymbolicLink()) throw new StepError(`${link} is a directory, not a snapshot link; was this repository made by another tool?`);
    target = readlinkSync(link);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (target === `${CURRENT}/repodata`) {
    const cur = path.join(repo, CURRENT);
    let to: string;
    try {
      to = readlinkSync(cur);
    } catch (err) {
      throw new StepError(`${link} points to ${CURRENT}/repodata, but ${cur} is not a link to a snapshot: ${(err as Error).message}`);
    }
    const m = new RegExp(`^${escapeRe(SNAPSHOTS)}/([^/]+)$`).exec(to);
    if (!m) throw new StepError(`${cur} points to '${to}', not to a snapshot under ${SNAPSHOTS}/`);
    return m[1];
  }
  // The older layout: the metadata link itself was the switch.
  const m = new RegExp(`^${escapeRe(SNAPSHOTS)}/([^/]+)/repodata$`).exec(target);
  if (!m) throw new StepError(`${link} points to '${target}', neither to ${CURRENT}/repodata nor to a snapshot under ${SNAPSHOTS}/`);
  return m[1];
}

export function readSnapshot(repo: string, stamp: string): SnapshotRecord {
  const file = path.join(snapshotDir(repo, stamp), 'snapshot.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SnapshotRecord;
  } catch (err) {
    throw new StepError(`cannot read the index of snapshot ${stamp} (${file}): ${(err as Error).message}`);
  }
}

export function writeSnapshotRecord(dir: string, rec: SnapshotRecord): void {
  writeJsonAtomic(path.join(dir, 'snapshot.json'), rec);
}

/** Complete snapshots (no partial ones), oldest first. */
export function listSnapshots(repo: string): string[] {
  const dir = snapshotsDir(repo);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((s) => !s.includes('.partial-') && existsSync(path.join(dir, s, 'snapshot.json')))
    .sort();
}

/**
 * Serves a snapshot: points `repo/current` at it in one rename, metadata and page together.
 *
 * In a repository of the older layout `repodata` still points straight at the served snapshot, so
 * renaming `current` alone switches nothing; the rename of the new `repodata -> current/repodata`
 * link over the old one is then the switch (old metadata to new in one step), and `index.html`
 * follows. A publisher killed between the two renames leaves the old layout serving the old
 * snapshot, and the next switch does the same again. Once migrated, the static links are never
 * touched again.
 */
export function switchTo(repo: string, stamp: string): void {
  const tmpLink = path.join(repo, `.${CURRENT}.tmp-${process.pid}`);
  rmSync(tmpLink, { force: true });
  symlinkSync(path.join(SNAPSHOTS, stamp), tmpLink);
  faultPoint('publish:switch');
  renameSync(tmpLink, path.join(repo, CURRENT));
  for (const name of STATIC_LINKS) {
    const want = `${CURRENT}/${name}`;
    const link = path.join(repo, name);
    let have: string | undefined;
    try {
      have = readlinkSync(link);
    } catch {
      have = undefined;
    }
    if (have === want) continue;
    const tmp = path.join(repo, `.${name}.tmp-${process.pid}`);
    rmSync(tmp, { force: true });
    symlinkSync(want, tmp);
    faultPoint(`publish:migrate-${name}`);
    renameSync(tmp, link);
  }
}

/**
 * Test hook like faultPoint (test-hooks.ts), for a publisher killed while a child process works in
 * `dir`: the children working there are stopped (SIGSTOP) first, so they are still there, mid-run,
 * whenever the next publisher looks. Without it a test has to catch the child in the act, and
 * loses the race to a fast child or a busy machine.
 */
export function faultWhileRunning(point: string, dir: string): void {
  if (!faultAt(point)) return;
  stopProcesses(pidsUsing([dir]).keys());
  killSelf();
}

/**
 * Removes what a killed publisher left: partial snapshots (after stopping an orphaned createrepo_c
 * still writing one), staging directories and temporary links. Runs under the repository lock, so
 * none of it belongs to a live publisher.
 */
export async function recoverRepo(repo: string): Promise<void> {
  const leftovers: string[] = [];
  const snaps = snapshotsDir(repo);
  if (existsSync(snaps)) {
    for (const s of readdirSync(snaps)) {
      if (s.includes('.partial-')) leftovers.push(path.join(snaps, s));
      // Scratch roots of build facts being read into a complete snapshot (builds.ts), and a page
      // being rewritten in place.
      else if (statSync(path.join(snaps, s)).isDirectory()) for (const f of readdirSync(path.join(snaps, s))) if (f.startsWith('.facts-') || f.startsWith(`.${INDEX_HTML}.tmp-`)) leftovers.push(path.join(snaps, s, f));
    }
  }
  const tmpLinks = [CURRENT, ...STATIC_LINKS].map((n) => `.${n}.tmp-`);
  for (const f of readdirSync(repo)) if (f.startsWith('.incoming-') || f.startsWith('.history.json.tmp-') || tmpLinks.some((t) => f.startsWith(t))) leftovers.push(path.join(repo, f));
  const pool = poolDir(repo);
  if (existsSync(pool)) for (const f of readdirSync(pool)) if (f.startsWith('.') && f.includes('.tmp-')) leftovers.push(path.join(pool, f));
  if (leftovers.length === 0) return;
  for (let attempt = 0; attempt < 20; attempt++) {
    const users = pidsUsing(leftovers);
    if (users.size === 0) break;
    log.warn(`stopping process(es) ${[...users.keys()].join(' ')} left writing into a dead publisher's files`);
    for (const pid of users.keys()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    await sleep(100);
  }
  for (const p of leftovers) rmSync(p, { recursive: true, force: true });
  log.warn(`removed ${leftovers.length} leftover(s) of an interrupted publish: ${leftovers.map((p) => path.relative(repo, p)).join(', ')}`);
}

/**
 * Deletes snapshots nobody can be reading any more, then pool files no kept snapshot lists.
 * Kept: the served snapshot, the one it replaced, and any retired (replaced by a newer one)
 * within the grace period. Folders without an index (made by an older ost-images, never served
 * since) count as retired long ago.
 */
export function retireSnapshots(repo: string): { snapshots: string[]; files: string[] } {
  const served = servedStamp(repo);
  if (!served) return { snapshots: [], files: [] };
  const current = readSnapshot(repo, served);
  // Also what `current` names, should a publisher have died migrating an older layout between
  // renaming `current` and renaming `repodata` (servedStamp then still reads the old link).
  let switched: string | undefined;
  try {
    switched = path.basename(readlinkSync(path.join(repo, CURRENT)));
  } catch {
    switched = undefined;
  }
  const keep = new Set([served, current.previous, switched].filter((s): s is string => !!s));
  const cutoff = Date.now() - graceSeconds() * 1000;
  const all = listSnapshots(repo);
  const records = new Map<string, SnapshotRecord>();
  for (const s of all) records.set(s, s === served ? current : readSnapshot(repo, s));
  // A snapshot stopped being served when the one naming it `previous` was made; one nobody names
  // (left by a rollback) counts from its own creation.
  const retired = new Map<string, number>();
  for (const r of records.values()) if (r.previous) retired.set(r.previous, Math.max(retired.get(r.previous) ?? 0, Date.parse(r.created)));
  for (const [s, r] of records) if ((retired.get(s) ?? Date.parse(r.created)) >= cutoff) keep.add(s);
  const legacy = readdirSync(snapshotsDir(repo)).filter((s) => !s.includes('.partial-') && !records.has(s) && s !== served);
  const removedSnaps: string[] = [];
  for (const s of [...all, ...legacy]) {
    if (keep.has(s)) continue;
    rmSync(snapshotDir(repo, s), { recursive: true, force: true });
    removedSnaps.push(s);
  }
  const listed = new Set<string>();
  for (const s of keep) for (const p of records.get(s)?.packages ?? []) listed.add(p.file);
  const removedFiles: string[] = [];
  for (const f of readdirSync(poolDir(repo))) {
    if (f.endsWith('.rpm') && !f.startsWith('.') && !listed.has(f)) {
      rmSync(path.join(poolDir(repo), f), { force: true });
      removedFiles.push(f);
    }
  }
  if (removedSnaps.length + removedFiles.length > 0) {
    log.info(`retired ${removedSnaps.length} old snapshot(s) and ${removedFiles.length} package file(s) no kept snapshot lists`);
  }
  return { snapshots: removedSnaps, files: removedFiles };
}

/** Puts every package of a snapshot back into the pool (from its hard links) before serving it. */
export function restorePool(repo: string, rec: SnapshotRecord): void {
  for (const p of rec.packages) {
    const dest = path.join(poolDir(repo), p.file);
    const src = path.join(snapshotDir(repo, rec.stamp), POOL, p.file);
    // Same name is not enough: a package re-signed since holds other bytes than this metadata says.
    if (existsSync(dest) && statSync(dest).ino === statSync(src).ino) continue;
    const tmp = path.join(poolDir(repo), `.${p.file}.tmp-${process.pid}`);
    rmSync(tmp, { force: true });
    linkSync(src, tmp);
    renameSync(tmp, dest);
  }
}
