// The publish stage: puts packages into a DNF repository that test machines read while it changes.
// A publish is three steps under the repository lock: read what the decision needs (the served
// snapshot's index, the headers of the packages not served yet, the usage record for retention by
// use), plan (plan.ts: pure, every decision in one value), and apply the plan (apply.ts: a new
// snapshot beside the served one, checked, then one atomic switch). `publish`, `prune`,
// `prune --keep-used-within` (prune-by-use.ts), `--dry-run` (read and plan, nothing written) and the
// jobs that publish (nightly, promote, all, the CI layer jobs) all take this one path.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { StepError, UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { acquireLock } from '../core/lock.js';
import { readHeader } from '../tools/rpmbuild.js';
import { secretKeyFingerprints } from '../tools/gpg.js';
import { BASE_URL, renderRepoFile } from '../repository/repo-file.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { DAYS, KEEP, numberProblem } from '../input/numbers.js';
import { parseUrlList } from '../input/urls.js';
import { onUserPath } from '../input/paths.js';
import { collectBuilds, readBuilds } from '../repository/builds.js';
import { usedWithin } from '../repository/usage.js';
import { writeStatusPage } from '../status/status-page.js';
import {
  POOL,
  PUBLIC_KEY_FILE,
  REPO_FILE,
  graceSeconds,
  listSnapshots,
  poolDir,
  readSnapshot,
  recoverRepo,
  restorePool,
  servedStamp,
  snapshotDir,
  snapshotsDir,
  switchTo,
  writeSnapshotRecord,
  type PackageEntry,
  type SnapshotRecord,
} from '../repository/snapshot.js';
import { applyPublish, baseUrl, carryMetadata } from './apply.js';
import { planPublish, refusalError, signingRefusal, type IncomingPackage, type PublishPlan } from './plan.js';

// Pure helpers that callers have always imported from here.
export { setOf, unqualifiedConflicts } from './plan.js';

export interface PublishOptions {
  /** Keep this many newest builds of every top-level package (and what they require). */
  keep?: number;
  /** gpg key (id, fingerprint or e-mail) that signs packages and repomd.xml. */
  signKey?: string;
  /** Publish unsigned into a repository that was signed (otherwise refused). */
  unsigned?: boolean;
  /** Base URL test machines reach the repository at, for the .repo file. */
  url?: string;
  /** Read and plan, write nothing: the result carries the plan. */
  dryRun?: boolean;
  /**
   * With `keep`: packages retention must keep besides the newest builds (and what they require).
   * Trimming a staging repository pins other sets' packages and builds a pipeline may still be
   * working with.
   */
  pin?: (p: PackageEntry) => boolean;
  /**
   * With `keep`: also keep every build downloaded within this many days (the repository's usage
   * record, read under the lock when retention is planned) and what it requires.
   */
  keepUsedWithin?: number;
  /** The time the "used" rule counts back from; default: the clock when retention is planned. */
  now?: Date;
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
  /** A dry run's plan: everything the publish would do. */
  plan?: PublishPlan;
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

/**
 * The headers of the offered packages the served snapshot does not list, each file once. "New"
 * means not in the served snapshot; a pool file left by a killed publish counts as new.
 */
async function readIncoming(rpms: string[], served: SnapshotRecord | undefined): Promise<IncomingPackage[]> {
  const listed = new Set(served?.packages.map((p) => p.file));
  const seen = new Set<string>();
  const paths = rpms.filter((r) => {
    const b = path.basename(r);
    if (listed.has(b) || seen.has(b)) return false;
    seen.add(b);
    return true;
  });
  // A few rpm processes at a time, not one per package at once.
  const incoming: IncomingPackage[] = [];
  for (let i = 0; i < paths.length; i += 8) {
    const batch = paths.slice(i, i + 8);
    const entries = await Promise.all(batch.map(entryFor));
    incoming.push(...entries.map((e, j) => ({ ...e, source: batch[j]! })));
  }
  return incoming;
}

function resultOf(plan: PublishPlan, snapshot: string, packagesRead: number, dryRun: boolean, t0: number): PublishResult {
  const changed = plan.changes.changed;
  return {
    repo: plan.repo,
    snapshot,
    previous: changed ? plan.served?.stamp : plan.served?.previous,
    changed,
    added: plan.changes.added,
    removed: plan.changes.removed,
    resigned: plan.changes.resigned,
    packages: plan.snapshot.length,
    packagesRead,
    signedBy: plan.signing.key ?? (changed ? undefined : plan.served?.signedBy),
    dryRun,
    seconds: (Date.now() - t0) / 1000,
    ...(dryRun ? { plan } : {}),
  };
}

export async function publish(repo: string, rpms: string[], opts: PublishOptions = {}): Promise<PublishResult> {
  return (await publishWithPlan(repo, rpms, opts)).result;
}

/** publish, also handing back the plan it carried out (or, in a dry run, would have). */
export async function publishWithPlan(repo: string, rpms: string[], opts: PublishOptions = {}): Promise<{ plan: PublishPlan; result: PublishResult }> {
  // The commands check their options already; a caller of this function gets the same rules.
  const keepProblem = opts.keep === undefined ? undefined : numberProblem(opts.keep, KEEP);
  if (keepProblem) throw new UsageError(`--keep: ${keepProblem}`);
  const daysProblem = opts.keepUsedWithin === undefined ? undefined : numberProblem(opts.keepUsedWithin, DAYS);
  if (daysProblem) throw new UsageError(`--keep-used-within: ${daysProblem}`);
  if (opts.url !== undefined) parseUrlList('--url', opts.url, BASE_URL);
  graceSeconds();
  // A wrong key is bad input: found before anything is written.
  const fprs = opts.signKey ? await secretKeyFingerprints(opts.signKey) : [];
  const dryRun = !!opts.dryRun;
  if (dryRun && !existsSync(repo)) throw new UsageError(`repository ${repo} does not exist`);
  if (!dryRun) onUserPath('--repo', repo, () => mkdirSync(repo, { recursive: true }));
  // Publishers of any set serialize on the repository.
  const unlock = dryRun ? () => undefined : await acquireLock(path.join(repo, '.lock'), `repository ${repo}`);
  try {
    const t0 = Date.now();
    if (!dryRun) {
      await recoverRepo(repo);
      mkdirSync(poolDir(repo), { recursive: true });
      mkdirSync(snapshotsDir(repo), { recursive: true });
    }
    const served = await servedRecord(repo, !dryRun);
    // The pool holds exactly the served snapshot's files (a publish killed while replacing
    // re-signed packages may have left other bytes under a served name).
    if (served && !dryRun) restorePool(repo, served);
    // Refused before any package header is read.
    const unsignedRefusal = signingRefusal(repo, served, fprs, opts.unsigned);
    if (unsignedRefusal) throw refusalError(unsignedRefusal);
    const incoming = await readIncoming(rpms, served);
    const used = opts.keep !== undefined && opts.keepUsedWithin !== undefined ? usedWithin(repo, opts.keepUsedWithin, opts.now ?? new Date()) : undefined;

    const plan = planPublish({ repo, served, incoming }, { keep: opts.keep, pin: opts.pin, used, fingerprints: fprs, unsigned: opts.unsigned });
    if (plan.refusals.length > 0) throw refusalError(plan.refusals[0]!);
    if (dryRun) return { plan, result: resultOf(plan, served?.stamp ?? '', 0, true, t0) };
    const applied = await applyPublish(plan, served, { url: opts.url });
    return { plan, result: resultOf(plan, applied.snapshot, applied.packagesRead, false, t0) };
  } finally {
    unlock();
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
  return (await pruneWithPlan(repo, keep, opts)).result;
}

/** prune, also handing back the plan (prune-by-use reads its retention rules). */
export async function pruneWithPlan(repo: string, keep: number, opts: Omit<PublishOptions, 'keep'> = {}): Promise<{ plan: PublishPlan; result: PublishResult }> {
  if (!existsSync(path.join(repo, 'repodata'))) throw new UsageError(`${repo} is not a published repository (no repodata)`);
  return publishWithPlan(repo, [], { ...opts, keep });
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
