// The publish stage: puts packages into a DNF repository that test machines read while it changes.
// Every change (new packages, retention, re-signing) builds a complete new snapshot beside the
// served one, checks it (closure of Requires, metadata listing exactly the intended packages,
// signature), and then switches to it with one rename; see snapshot.ts for the layout. A publisher
// killed at any point leaves the served snapshot untouched, and the next one clears its leftovers.
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, StepError, UsageError, type ConfigIssue } from '../core/errors.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { acquireLock } from '../core/lock.js';
import { releaseStamp } from '../records/build.js';
import { nvr, planRetention } from '../plan/retention.js';
import { unresolvedRequires } from '../core/rpmdeps.js';
import { createrepo } from '../tools/createrepo.js';
import { detachSign, exportPublicKey, secretKeyFingerprints, verifyDetached } from '../tools/gpg.js';
import { readHeader, signatureKeyId } from '../tools/rpmbuild.js';
import { addSign } from '../tools/rpmsign.js';
import { decompress, primaryPackages, repomdLocations } from '../repository/repodata.js';
import { BASE_URL, renderRepoFile } from '../repository/repo-file.js';
import { KEEP, numberProblem } from '../input/numbers.js';
import { parseUrlList } from '../input/urls.js';
import { onUserPath } from '../input/paths.js';
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
  listSnapshots,
  poolDir,
  readSnapshot,
  recoverRepo,
  restorePool,
  retireSnapshots,
  servedStamp,
  snapshotDir,
  snapshotsDir,
  switchTo,
  writeSnapshotRecord,
  type PackageEntry,
  type SnapshotRecord,
} from '../repository/snapshot.js';

export interface PublishOptions {
  /** Keep this many newest builds of every top-level package (and what they require). */
  keep?: number;
  /** gpg key (id, fingerprint or e-mail) that signs packages and repomd.xml. */
  signKey?: string;
  /** Publish unsigned into a repository that was signed (otherwise refused). */
  unsigned?: boolean;
  /** Base URL test machines reach the repository at, for the .repo file. */
  url?: string;
  /** Decide and report, write nothing. */
  dryRun?: boolean;
  /**
   * With `keep`: packages retention must keep besides the newest builds (and what they require).
   * Trimming a staging repository pins other sets' packages and builds a pipeline may still be
   * working with.
   */
  pin?: (p: PackageEntry) => boolean;
}

export interface PublishResult {
  repo: string;
  /** The snapshot served afterwards (unchanged when nothing changed). */
  snapshot: string;
  previous?: string;
  changed: boolean;
  added: string[];
  removed: string[];
  resigned: string[];
  packages: number;
  /** Packages createrepo_c had to read (new and re-signed ones; the rest reuse their metadata). */
  packagesRead: number;
  signedBy?: string;
  dryRun: boolean;
  seconds: number;
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

/** The set a package belongs to, from its `ost-images-layer(<set>/<layer>)` Provides. */
export function setOf(h: { provides: string[] }): string | undefined {
  for (const p of h.provides) {
    const m = /^ost-images-(?:layer|flat)\(([^/]+)\//.exec(p);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Short names (`ost-images-engine-installed`) are what test machines install by; if two sets in
 * one repository provided the same one, which image a machine gets would depend on dnf's choice.
 */
export function unqualifiedConflicts(headers: { file: string; header: { name: string; provides: string[] } }[]): ConfigIssue[] {
  const claims = new Map<string, Map<string, string>>();
  for (const { file, header } of headers) {
    const set = setOf(header);
    if (!set) continue;
    for (const p of header.provides) {
      const name = p.split(' ')[0]!;
      if (name === header.name || /^ost-images-(layer|flat|key)\(/.test(name) || name === 'installonlypkg(vm)') continue;
      const bySet = claims.get(name) ?? new Map<string, string>();
      if (!bySet.has(set)) bySet.set(set, file);
      claims.set(name, bySet);
    }
  }
  const issues: ConfigIssue[] = [];
  for (const [name, bySet] of claims) {
    if (bySet.size > 1) {
      const sets = [...bySet.entries()].map(([s, f]) => `${s} (${path.basename(f)})`);
      issues.push({ file: [...bySet.values()][0]!, path: 'Provides', message: `'${name}' is provided by more than one set: ${sets.join(', ')}; mark only one set 'package.default: true' per repository` });
    }
  }
  return issues;
}


/** The base URL for the .repo file: as given, else the one written last time, else file://. */
function baseUrl(repo: string, given?: string): string {
  if (given) return given;
  try {
    const m = /^baseurl=(.+)$/m.exec(readFileSync(path.join(repo, REPO_FILE), 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // First publish.
  }
  return pathToFileURL(path.resolve(repo)).href;
}

async function entryFor(file: string): Promise<PackageEntry> {
  const h = await readHeader(file);
  return { file: path.basename(file), name: h.name, version: h.version, release: h.release, provides: h.provides, requires: h.requires, size: statSync(file).size };
}

/** The index of a snapshot made before snapshots carried one: read from its packages' headers. */
async function legacyIndex(repo: string, stamp: string): Promise<SnapshotRecord> {
  const dir = path.join(snapshotDir(repo, stamp), POOL);
  const packages = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.rpm'))) packages.push(await entryFor(path.join(dir, f)));
  return { schema: 1, stamp, created: new Date(0).toISOString(), added: [], removed: [], packages };
}

async function servedRecord(repo: string, convert: boolean): Promise<SnapshotRecord | undefined> {
  const stamp = servedStamp(repo);
  if (!stamp) return undefined;
  if (existsSync(path.join(snapshotDir(repo, stamp), 'snapshot.json'))) return readSnapshot(repo, stamp);
  // Served by an older ost-images: give it an index once, so rollback and retention know it.
  const rec = await legacyIndex(repo, stamp);
  if (convert) writeSnapshotRecord(snapshotDir(repo, stamp), rec);
  return rec;
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
function carryMetadata(prevSnap: string, building: string): void {
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

export async function publish(repo: string, rpms: string[], opts: PublishOptions = {}): Promise<PublishResult> {
  // The commands check their options already; a caller of this function gets the same rules.
  const keepProblem = opts.keep === undefined ? undefined : numberProblem(opts.keep, KEEP);
  if (keepProblem) throw new UsageError(`--keep: ${keepProblem}`);
  if (opts.url !== undefined) parseUrlList('--url', opts.url, BASE_URL);
  graceSeconds();
  // A wrong key is bad input: found before anything is written.
  const fprs = opts.signKey ? await secretKeyFingerprints(opts.signKey) : [];
  if (opts.dryRun && !existsSync(repo)) throw new UsageError(`repository ${repo} does not exist`);
  if (!opts.dryRun) onUserPath('--repo', repo, () => mkdirSync(repo, { recursive: true }));
  // Publishers of any set serialize on the repository.
  const unlock = opts.dryRun ? () => undefined : await acquireLock(path.join(repo, '.lock'), `repository ${repo}`);
  try {
    return await publishLocked(repo, rpms, opts, fprs);
  } finally {
    unlock();
  }
}

/** `fprs`: the signing key's fingerprints, primary first (empty: unsigned). */
async function publishLocked(repo: string, rpms: string[], opts: PublishOptions, fprs: string[]): Promise<PublishResult> {
  const fpr = fprs[0];
  const t0 = Date.now();
  const dryRun = !!opts.dryRun;
  if (!dryRun) {
    await recoverRepo(repo);
    mkdirSync(poolDir(repo), { recursive: true });
    mkdirSync(snapshotsDir(repo), { recursive: true });
  }
  const prev = await servedRecord(repo, !dryRun);
  // The pool holds exactly the served snapshot's files (a publish killed while replacing
  // re-signed packages may have left other bytes under a served name).
  if (prev && !dryRun) restorePool(repo, prev);
  if (prev?.signedBy && !fpr && !opts.unsigned) {
    throw new UsageError(
      `repository ${repo} is signed (key ${prev.signedBy}); an unsigned snapshot would be refused by every client with repo_gpgcheck=1: pass --sign-key, or --unsigned to stop signing deliberately`,
    );
  }

  // "New" means not in the served snapshot; a pool file left by a killed publish counts as new.
  const served = new Set(prev?.packages.map((p) => p.file));
  const seen = new Set<string>();
  const incomingPaths = rpms.filter((r) => {
    const b = path.basename(r);
    if (served.has(b) || seen.has(b)) return false;
    seen.add(b);
    return true;
  });
  // Headers of new packages only; a few rpm processes at a time, not one per package at once.
  const incoming: PackageEntry[] = [];
  for (let i = 0; i < incomingPaths.length; i += 8) incoming.push(...(await Promise.all(incomingPaths.slice(i, i + 8).map(entryFor))));
  const sourceOf = new Map<PackageEntry, string>(incoming.map((e, i) => [e, incomingPaths[i]!]));
  const candidates = [...(prev?.packages ?? []), ...incoming];

  // Refuse before writing anything: clashing short names, then unresolved Requires.
  const conflicts = unqualifiedConflicts(candidates.map((p) => ({ file: sourceOf.get(p) ?? path.join(poolDir(repo), p.file), header: p })));
  if (conflicts.length > 0) throw new ConfigError(conflicts, `refusing to publish into ${repo}`);
  let final = candidates;
  let removed: PackageEntry[] = [];
  if (opts.keep !== undefined) {
    const pin = opts.pin;
    const d = planRetention(candidates, opts.keep, pin ? [...incoming, ...candidates.filter((p) => pin(p))] : incoming);
    final = d.keep;
    removed = d.remove;
  }
  const unresolved = unresolvedRequires(final);
  if (unresolved.length > 0) {
    const issues = unresolved.map(({ pkg, require }) => ({
      file: sourceOf.get(pkg) ?? path.join(poolDir(repo), pkg.file),
      path: 'Requires',
      message: `'${require}' of ${nvr(pkg)} is provided by no package of the new snapshot`,
    }));
    throw new ConfigError(issues, `refusing to publish into ${repo}: unresolved dependencies (nothing was changed)`);
  }
  const toSign = fpr ? final.filter((p) => p.signedBy !== fpr) : [];
  const resigned = toSign.filter((p) => !sourceOf.has(p));
  let packagesRead = 0;
  const result = (snapshot: string, changed: boolean): PublishResult => ({
    repo,
    snapshot,
    previous: changed ? prev?.stamp : prev?.previous,
    changed,
    added: incoming.map((p) => p.file),
    removed: removed.map((p) => p.file),
    resigned: resigned.map((p) => p.file),
    packages: final.length,
    packagesRead,
    signedBy: fpr ?? (changed ? undefined : prev?.signedBy),
    dryRun,
    seconds: (Date.now() - t0) / 1000,
  });

  const changed = !prev || incoming.length > 0 || removed.length > 0 || toSign.length > 0 || (!!prev.signedBy && !fpr);
  if (dryRun) return result(prev?.stamp ?? '', changed);
  if (!changed) {
    await migrateServed(repo, prev);
    writeFileAtomic(path.join(repo, REPO_FILE), renderRepoFile(baseUrl(repo, opts.url), !!prev.signedBy));
    log.info(`nothing new to publish into ${repo}; still serving snapshot ${prev.stamp}`);
    return result(prev.stamp, false);
  }
  if (!fpr) log.warn(`publishing ${repo} unsigned (no --sign-key): clients must set gpgcheck=0`);

  const staging = path.join(repo, `.incoming-${process.pid}`);
  const stamp = newStamp(repo);
  const building = `${snapshotDir(repo, stamp)}.partial-${process.pid}`;
  try {
    // Signing rewrites a package, so it works on copies: the store's packages stay as built.
    // A package already served and re-signed (first signed publish, key rotation) keeps its pool
    // file until the moment before the switch (see below); the new snapshot links the signed copy.
    if (toSign.length > 0) {
      mkdirSync(staging);
      for (const p of toSign) copyFileSync(sourceOf.get(p) ?? path.join(poolDir(repo), p.file), path.join(staging, p.file));
      log.info(`signing ${toSign.length} package(s) with key ${fpr}`);
      await addSign(toSign.map((p) => path.join(staging, p.file)), fpr!);
      for (const p of toSign) {
        const id = await signatureKeyId(path.join(staging, p.file));
        if (!id || !fprs.some((f) => f.toLowerCase().endsWith(id))) throw new StepError(`rpmsign left ${p.file} signed by ${id ?? 'nobody'}, not by ${fpr}`);
      }
    }
    const signed = new Set(toSign);
    const entries = final.map((p) => {
      const e: PackageEntry = { ...p, size: signed.has(p) ? statSync(path.join(staging, p.file)).size : p.size };
      if (signed.has(p)) e.signedBy = fpr;
      return e;
    });
    const resignedFiles = new Set(resigned.map((p) => p.file));
    for (const p of incoming) if (!signed.has(p)) placeFile(sourceOf.get(p)!, path.join(poolDir(repo), p.file));
    for (const p of toSign) if (!resignedFiles.has(p.file)) renameSync(path.join(staging, p.file), path.join(poolDir(repo), p.file));

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
    packagesRead = read.length;
    // The incremental path is what keeps a publish fast in a big repository; say when it was lost.
    const fresh = new Set([...incoming, ...toSign].map((p) => p.file));
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
      added: incoming.map((p) => p.file),
      removed: removed.map((p) => p.file),
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
      `published snapshot ${stamp} of ${repo}: ${entries.length} package(s), ${incoming.length} new, ${removed.length} removed` +
        (resigned.length ? `, ${resigned.length} re-signed` : '') +
        (fpr ? `, signed by ${fpr}` : ', unsigned'),
    );
    try {
      retireSnapshots(repo);
    } catch (err) {
      log.warn(`snapshot ${stamp} is served, but retiring old snapshots failed: ${(err as Error).message}`);
    }
    return result(stamp, true);
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

/**
 * What publish would refuse as bad input, checked up front (the nightly runs this before it
 * builds for an hour): a signing key that is not in the keyring, an unsigned publish into a signed
 * repository.
 */
export async function checkPublishable(repo: string, opts: PublishOptions): Promise<void> {
  if (opts.signKey) await secretKeyFingerprints(opts.signKey);
  const stamp = existsSync(repo) ? servedStamp(repo) : undefined;
  const prev = stamp && existsSync(path.join(snapshotDir(repo, stamp), 'snapshot.json')) ? readSnapshot(repo, stamp) : undefined;
  if (prev?.signedBy && !opts.signKey && !opts.unsigned) {
    throw new UsageError(`repository ${repo} is signed (key ${prev.signedBy}); pass --sign-key, or --unsigned to stop signing deliberately`);
  }
}

/** Applies retention to a repository without adding packages (`ost-images prune`). */
export async function prune(repo: string, keep: number, opts: Omit<PublishOptions, 'keep'> = {}): Promise<PublishResult> {
  if (!existsSync(path.join(repo, 'repodata'))) throw new UsageError(`${repo} is not a published repository (no repodata)`);
  return publish(repo, [], { ...opts, keep });
}

export interface RollbackResult {
  repo: string;
  from: string;
  to: string;
}

/** Serves the snapshot the current one replaced again (`publish --rollback`). */
export async function rollback(repo: string, opts: { url?: string; unsigned?: boolean } = {}): Promise<RollbackResult> {
  if (!existsSync(path.join(repo, 'repodata'))) throw new UsageError(`${repo} is not a published repository (no repodata)`);
  if (opts.url !== undefined) parseUrlList('--url', opts.url, BASE_URL);
  const unlock = await acquireLock(path.join(repo, '.lock'), `repository ${repo}`);
  try {
    await recoverRepo(repo);
    const from = servedStamp(repo)!;
    const target = readSnapshot(repo, from).previous;
    if (!target || !listSnapshots(repo).includes(target)) {
      throw new StepError(`cannot roll back ${repo}: snapshot ${from} replaced ${target ? `${target}, which is no longer kept` : 'nothing'}`);
    }
    const rec = readSnapshot(repo, target);
    const current = readSnapshot(repo, from);
    if (current.signedBy && !rec.signedBy && !opts.unsigned) {
      throw new UsageError(`snapshot ${target} is unsigned while ${from} is signed: clients with repo_gpgcheck=1 would refuse it; add --unsigned to roll back anyway`);
    }
    if (rec.signedBy && current.signedBy && rec.signedBy !== current.signedBy) {
      log.warn(`snapshot ${target} is signed by ${rec.signedBy}, not by the key published now (${current.signedBy}); clients verify against ${PUBLIC_KEY_FILE}`);
    }
    restorePool(repo, rec);
    // A client reading the current snapshot's metadata right now must still find it.
    carryMetadata(snapshotDir(repo, from), snapshotDir(repo, target));
    // Its own page, rewritten with today's history (and made, for a snapshot older than pages).
    const targetDir = snapshotDir(repo, target);
    await collectBuilds(targetDir, rec.packages, { schema: 1, builds: { ...readBuilds(snapshotDir(repo, from)).builds, ...readBuilds(targetDir).builds } });
    await writeStatusPage(repo, targetDir, rec);
    switchTo(repo, target);
    writeFileAtomic(path.join(repo, REPO_FILE), renderRepoFile(baseUrl(repo, opts.url), !!rec.signedBy));
    log.info(`rolled ${repo} back from snapshot ${from} to ${target} (${rec.packages.length} package(s))`);
    return { repo, from, to: target };
  } finally {
    unlock();
  }
}
