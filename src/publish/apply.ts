// Carrying out a publish plan (plan.ts): it decides nothing. Every change (new packages, retention,
// re-signing) builds a complete new snapshot beside the served one, checks it (metadata listing
// exactly the planned packages, signatures), and then switches to it with one rename; see
// repository/snapshot.ts for the layout. A publisher killed at any point leaves the served
// snapshot untouched, and the next one clears its leftovers. The fault points (OST_IMAGES_FAULT)
// mark the moments the tests kill a publisher at.
//
// A plan with nothing to change still brings the served snapshot up to date (layout, status
// page) and rewrites ost-images.repo; a refused plan is never applied.
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { StepError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { releaseStamp } from '../records/build.js';
import { createrepo } from '../tools/createrepo.js';
import { detachSign, exportPublicKey, verifyDetached } from '../tools/gpg.js';
import { signatureKeyId } from '../tools/rpmbuild.js';
import { addSign } from '../tools/rpmsign.js';
import { decompress, primaryPackages, repomdLocations } from '../repository/repodata.js';
import { renderRepoFile } from '../repository/repo-file.js';
import { faultPoint } from '../input/test-hooks.js';
import { collectBuilds, readBuilds } from '../repository/builds.js';
import { writeStatusPage } from '../status/status-page.js';
import {
  CURRENT,
  INDEX_HTML,
  POOL,
  PUBLIC_KEY_FILE,
  REPO_FILE,
  faultWhileRunning,
  graceSeconds,
  poolDir,
  retireSnapshots,
  snapshotDir,
  switchTo,
  writeSnapshotRecord,
  type PackageEntry,
  type SnapshotRecord,
} from '../repository/snapshot.js';
import { refusalError, type PublishPlan } from './plan.js';

export interface ApplyOptions {
  /** Base URL(s) for ost-images.repo; default: the ones written last time, else file://. */
  url?: string;
}

export interface Applied {
  /** The snapshot served afterwards (the served one when the plan changes nothing). */
  snapshot: string;
  /** Packages createrepo_c had to read (new and re-signed ones; the rest reuse their metadata). */
  packagesRead: number;
}

/** Hard link when on the same file system, else copy; through a temporary name either way. */
function placeFile(src: string, dest: string): void {
  // rename(2) of a hard link onto another link of the same file does nothing (and leaves the
  // temporary name behind): a killed publish may already have placed this very file.
  if (existsSync(dest) && statSync(dest).ino === statSync(src).ino) return;
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}`);
  rmSync(tmp, { force: true });
  try {
    linkSync(src, tmp);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    copyFileSync(src, tmp);
  }
  renameSync(tmp, dest);
}

/** The base URL for the .repo file: as given, else the one written last time, else file://. */
export function baseUrl(repo: string, given?: string): string {
  if (given) return given;
  try {
    const m = /^baseurl=(.+)$/m.exec(readFileSync(path.join(repo, REPO_FILE), 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // First publish.
  }
  return pathToFileURL(path.resolve(repo)).href;
}

function newStamp(repo: string): string {
  const base = releaseStamp(new Date());
  let stamp = base;
  for (let n = 1; existsSync(snapshotDir(repo, stamp)); n++) stamp = `${base}.${n}`;
  return stamp;
}

/**
 * Reads the new snapshot's metadata back before serving it: repomd.xml names files that exist, and
 * primary lists exactly the intended packages with their sizes.
 */
function checkMetadata(dir: string, packages: PackageEntry[]): void {
  const repomd = readFileSync(path.join(dir, 'repodata', 'repomd.xml'), 'utf8');
  const locations = repomdLocations(repomd);
  for (const href of locations.values()) {
    if (!existsSync(path.join(dir, href))) throw new StepError(`new snapshot ${dir}: repomd.xml names ${href}, which is missing`);
  }
  const primaryHref = locations.get('primary');
  if (!primaryHref) throw new StepError(`new snapshot ${dir}: repomd.xml names no primary metadata`);
  const listed = primaryPackages(decompress(primaryHref, readFileSync(path.join(dir, primaryHref))));
  const want = new Map(packages.map((p) => [`${POOL}/${p.file}`, p.size]));
  const got = new Map(listed.map((p) => [p.href, p.size]));
  const wrong = [...want.keys()].filter((h) => got.get(h) !== want.get(h)).concat([...got.keys()].filter((h) => !want.has(h)));
  if (wrong.length > 0) throw new StepError(`new snapshot ${dir}: metadata does not match its packages: ${wrong.join(', ')}`);
}

/**
 * Metadata file names are content hashes, but they are fetched through the `repodata` link: a
 * client that read the old repomd.xml just before the switch asks for the old primary through the
 * new link. So each snapshot's repodata also holds the metadata files of the one it replaces (and
 * those that one carried, while younger than the grace period), as hard links.
 */
export function carryMetadata(prevSnap: string, building: string): void {
  const from = path.join(prevSnap, 'repodata');
  const to = path.join(building, 'repodata');
  if (!existsSync(from)) return;
  const own = new Set(repomdLocations(readFileSync(path.join(from, 'repomd.xml'), 'utf8')).values());
  const cutoff = Date.now() - graceSeconds() * 1000;
  for (const f of readdirSync(from)) {
    if (f.startsWith('repomd.xml') || existsSync(path.join(to, f))) continue;
    if (own.has(`repodata/${f}`) || statSync(path.join(from, f)).mtimeMs >= cutoff) linkSync(path.join(from, f), path.join(to, f));
  }
}

/**
 * Carries out a plan made against `served` (the index planPublish read), under the repository
 * lock, after recoverRepo and restorePool. Throws the plan's first refusal, if it has one.
 */
export async function applyPublish(plan: PublishPlan, served: SnapshotRecord | undefined, opts: ApplyOptions = {}): Promise<Applied> {
  const repo = plan.repo;
  if (plan.refusals.length > 0) throw refusalError(plan.refusals[0]!);
  if (served?.stamp !== plan.served?.stamp) {
    throw new StepError(`the plan for ${repo} was made against snapshot ${plan.served?.stamp ?? '(none)'}, but ${served?.stamp ?? 'none'} is served: plan again`);
  }
  const prev = served;
  if (!plan.changes.changed) {
    // Nothing changes only when something is served (the first publish always changes).
    await migrateServed(repo, prev!);
    writeFileAtomic(path.join(repo, REPO_FILE), renderRepoFile(baseUrl(repo, opts.url), !!prev!.signedBy));
    log.info(`nothing new to publish into ${repo}; still serving snapshot ${prev!.stamp}`);
    return { snapshot: prev!.stamp, packagesRead: 0 };
  }
  const { key: fpr, fingerprints: fprs } = plan.signing;
  if (!fpr) log.warn(`publishing ${repo} unsigned (no --sign-key): clients must set gpgcheck=0`);

  const sourceOf = new Map(plan.incoming.map((p) => [p.file, p.source]));
  const toSign = plan.signing.sign;
  const signed = new Set(toSign);
  const resignedFiles = new Set(plan.signing.resign);
  const staging = path.join(repo, `.incoming-${process.pid}`);
  const stamp = newStamp(repo);
  const building = `${snapshotDir(repo, stamp)}.partial-${process.pid}`;
  try {
    // Signing rewrites a package, so it works on copies: the store's packages stay as built.
    // A package already served and re-signed (first signed publish, key rotation) keeps its pool
    // file until the moment before the switch (see below); the new snapshot links the signed copy.
    if (toSign.length > 0) {
      mkdirSync(staging);
      for (const f of toSign) copyFileSync(sourceOf.get(f) ?? path.join(poolDir(repo), f), path.join(staging, f));
      log.info(`signing ${toSign.length} package(s) with key ${fpr}`);
      await addSign(toSign.map((f) => path.join(staging, f)), fpr!);
      for (const f of toSign) {
        const id = await signatureKeyId(path.join(staging, f));
        if (!id || !fprs.some((x) => x.toLowerCase().endsWith(id))) throw new StepError(`rpmsign left ${f} signed by ${id ?? 'nobody'}, not by ${fpr}`);
      }
    }
    const entries = plan.snapshot.map((p) => {
      const e: PackageEntry = { ...p, size: signed.has(p.file) ? statSync(path.join(staging, p.file)).size : p.size };
      if (signed.has(p.file)) e.signedBy = fpr;
      return e;
    });
    for (const p of plan.incoming) if (!signed.has(p.file)) placeFile(p.source, path.join(poolDir(repo), p.file));
    for (const f of toSign) if (!resignedFiles.has(f)) renameSync(path.join(staging, f), path.join(poolDir(repo), f));

    mkdirSync(path.join(building, POOL), { recursive: true });
    for (const p of entries) {
      const from = resignedFiles.has(p.file) ? path.join(staging, p.file) : path.join(poolDir(repo), p.file);
      linkSync(from, path.join(building, POOL, p.file));
    }
    faultPoint('publish:before-createrepo');
    // createrepo_c reuses the served snapshot's metadata for every package whose name, size and
    // mtime are unchanged (hard links share them), so it reads only the new packages.
    const prevMd = prev && existsSync(path.join(snapshotDir(repo, prev.stamp), 'repodata', 'repomd.xml')) ? snapshotDir(repo, prev.stamp) : undefined;
    const creating = createrepo(building, prevMd);
    // createrepo_c is started by now (spawning is synchronous): a fault here kills the publisher
    // while it runs.
    faultWhileRunning('publish:during-createrepo', building);
    const read = await creating;
    // The incremental path is what keeps a publish fast in a big repository; say when it was lost.
    const fresh = new Set([...plan.incoming.map((p) => p.file), ...toSign]);
    const reread = read.filter((f) => !fresh.has(f));
    if (prevMd && reread.length > 0) log.warn(`createrepo_c read ${reread.length} unchanged package(s) again instead of reusing their metadata`);
    faultPoint('publish:after-createrepo');
    checkMetadata(building, entries);
    if (prev) carryMetadata(snapshotDir(repo, prev.stamp), building);
    const repomd = path.join(building, 'repodata', 'repomd.xml');
    if (fpr) {
      await detachSign(repomd, `${repomd}.asc`, fpr);
      await verifyDetached(`${repomd}.asc`, repomd);
    }
    const rec: SnapshotRecord = {
      schema: 1,
      stamp,
      created: new Date().toISOString(),
      previous: prev?.stamp,
      signedBy: fpr,
      added: plan.changes.added,
      removed: plan.changes.removed,
      packages: entries,
    };
    writeSnapshotRecord(building, rec);
    // The page goes into the snapshot before it is served, so the switch serves both at once.
    await collectBuilds(building, entries, prev ? readBuilds(snapshotDir(repo, prev.stamp)) : { schema: 1, builds: {} });
    await writeStatusPage(repo, building, rec);
    renameSync(building, snapshotDir(repo, stamp));
    // The key goes up before the metadata it verifies; the .repo file after the switch, so a
    // machine configured from it never expects signatures the served snapshot lacks.
    if (fpr) writeFileAtomic(path.join(repo, PUBLIC_KEY_FILE), await exportPublicKey(fpr));
    // Re-signed packages replace their served files only now, a few renames before the switch:
    // the only moment the pool and the served metadata disagree (once per signing key). A publish
    // killed in between is repaired by the next one (restorePool against the served snapshot).
    for (const f of resignedFiles) renameSync(path.join(staging, f), path.join(poolDir(repo), f));
    switchTo(repo, stamp);
    faultPoint('publish:after-switch');
    // From here on the new snapshot is served: housekeeping failures are warnings, not failures.
    try {
      writeFileAtomic(path.join(repo, REPO_FILE), renderRepoFile(baseUrl(repo, opts.url), !!fpr));
    } catch (err) {
      log.warn(`snapshot ${stamp} is served, but writing ${REPO_FILE} failed: ${(err as Error).message}`);
    }
    log.info(
      `published snapshot ${stamp} of ${repo}: ${entries.length} package(s), ${plan.incoming.length} new, ${plan.changes.removed.length} removed` +
        (resignedFiles.size ? `, ${resignedFiles.size} re-signed` : '') +
        (fpr ? `, signed by ${fpr}` : ', unsigned'),
    );
    try {
      retireSnapshots(repo);
    } catch (err) {
      log.warn(`snapshot ${stamp} is served, but retiring old snapshots failed: ${(err as Error).message}`);
    }
    return { snapshot: stamp, packagesRead: read.length };
  } finally {
    rmSync(building, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * A publish with nothing new still brings a repository of the older layout (or a snapshot made
 * before status pages) up to date: the served snapshot gets its build facts and page, and the
 * switch to the same snapshot puts `current` and the static links in place atomically.
 */
async function migrateServed(repo: string, prev: SnapshotRecord): Promise<void> {
  const dir = snapshotDir(repo, prev.stamp);
  const page = path.join(dir, INDEX_HTML);
  let layout: string | undefined;
  try {
    layout = readlinkSync(path.join(repo, 'repodata'));
  } catch {
    layout = undefined;
  }
  const migrated = layout === `${CURRENT}/repodata` && lstatExists(path.join(repo, INDEX_HTML));
  if (migrated && existsSync(page)) return;
  await collectBuilds(dir, prev.packages, readBuilds(dir));
  await writeStatusPage(repo, dir, prev);
  if (!migrated) {
    switchTo(repo, prev.stamp);
    log.info(`${repo}: now switched through '${CURRENT}' (the metadata and the status page together)`);
  }
}

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
