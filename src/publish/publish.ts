// Publishes packages into a DNF repository directory that is never seen half-written:
//
//   repo/packages/<nvr>.rpm                 the package pool (hard links to the store when possible)
//   repo/.snapshots/<stamp>/packages/       hard links of the pool as of one publish
//   repo/.snapshots/<stamp>/repodata/       createrepo_c's metadata for that snapshot
//   repo/repodata -> .snapshots/<stamp>/repodata   swapped by one rename(2)
//
// createrepo_c itself is not atomic (it renames repodata/ aside and the new one in), so it runs in a
// snapshot nobody serves yet; its hrefs ("packages/<file>") resolve against the pool from the served
// root. The previous snapshot is kept so a client that fetched repomd.xml just before the switch
// can still fetch the files it names.
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, StepError, type ConfigIssue } from '../errors.js';
import { log } from '../log.js';
import { acquireLock } from '../lock.js';
import { releaseStamp } from '../plan/naming.js';
import { createrepo } from '../tools/createrepo.js';
import { readHeader, type RpmHeader } from '../tools/rpmbuild.js';

const KEEP_SNAPSHOTS = 2;

export interface PublishResult {
  repo: string;
  snapshot: string;
  added: string[];
  packages: number;
  seconds: number;
}

/** Hard link when on the same file system, else copy; through a temporary name either way. */
function placeFile(src: string, dest: string): void {
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
function setOf(h: RpmHeader): string | undefined {
  for (const p of h.provides) {
    const m = /^ost-images-layer\(([^/]+)\//.exec(p);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Short names (`ost-images-engine-installed`) are what test machines install by; if two sets in
 * one repository provided the same one, which image a machine gets would depend on dnf's choice.
 */
export function unqualifiedConflicts(headers: { file: string; header: RpmHeader }[]): ConfigIssue[] {
  const claims = new Map<string, Map<string, string>>();
  for (const { file, header } of headers) {
    const set = setOf(header);
    if (!set) continue;
    for (const p of header.provides) {
      const name = p.split(' ')[0]!;
      if (name === header.name || name.startsWith('ost-images-layer(') || name.startsWith('ost-images-key(')) continue;
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

function currentSnapshot(repo: string): string | undefined {
  const link = path.join(repo, 'repodata');
  try {
    if (!lstatSync(link).isSymbolicLink()) throw new StepError(`${link} is a directory, not a snapshot link; was this repository made by another tool?`);
    return path.dirname(path.resolve(repo, readlinkSync(link)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function publish(repo: string, rpms: string[]): Promise<PublishResult> {
  mkdirSync(repo, { recursive: true });
  // Publishers of any set serialize on the repository.
  const unlock = await acquireLock(path.join(repo, '.lock'), `repository ${repo}`);
  try {
    return await publishLocked(repo, rpms);
  } finally {
    unlock();
  }
}

async function publishLocked(repo: string, rpms: string[]): Promise<PublishResult> {
  const t0 = Date.now();
  const pool = path.join(repo, 'packages');
  const snapsDir = path.join(repo, '.snapshots');
  mkdirSync(pool, { recursive: true });
  mkdirSync(snapsDir, { recursive: true });

  // "New" means not served yet: the served snapshot's packages, not the pool (a publish that died
  // after filling the pool must not make the next one skip those packages).
  const previous = currentSnapshot(repo);
  const served = previous && existsSync(path.join(previous, 'packages')) ? readdirSync(path.join(previous, 'packages')) : [];
  const poolFiles = readdirSync(pool).filter((f) => f.endsWith('.rpm') && !f.startsWith('.'));
  const incoming = rpms.filter((r) => !served.includes(path.basename(r)));
  if (incoming.length === 0 && previous) {
    log.info(`nothing new to publish into ${repo}`);
    return { repo, snapshot: path.basename(previous), added: [], packages: served.length, seconds: (Date.now() - t0) / 1000 };
  }
  // Refuse before writing anything: new packages against what the repository already holds.
  const headers = [];
  const fromPool = poolFiles.filter((p) => !incoming.some((r) => path.basename(r) === p));
  for (const f of [...fromPool.map((p) => path.join(pool, p)), ...incoming]) headers.push({ file: f, header: await readHeader(f) });
  const conflicts = unqualifiedConflicts(headers);
  if (conflicts.length > 0) throw new ConfigError(conflicts, `refusing to publish into ${repo}`);

  for (const r of incoming) placeFile(r, path.join(pool, path.basename(r)));

  let stamp = releaseStamp(new Date());
  for (let n = 1; existsSync(path.join(snapsDir, stamp)); n++) stamp = `${releaseStamp(new Date())}.${n}`;
  const snap = path.join(snapsDir, stamp);
  const building = `${snap}.partial-${process.pid}`;
  mkdirSync(path.join(building, 'packages'), { recursive: true });
  try {
    const all = readdirSync(pool).filter((f) => f.endsWith('.rpm') && !f.startsWith('.'));
    for (const f of all) linkSync(path.join(pool, f), path.join(building, 'packages', f));
    const prevMd = previous && existsSync(path.join(previous, 'repodata', 'repomd.xml')) ? path.join(previous, 'repodata') : undefined;
    await createrepo(building, prevMd);
    if (!statSync(path.join(building, 'repodata', 'repomd.xml')).isFile()) throw new StepError('createrepo_c wrote no repomd.xml');
    renameSync(building, snap);
    // The switch: one rename of a symlink over the old one.
    const tmpLink = path.join(repo, `.repodata.tmp-${process.pid}`);
    rmSync(tmpLink, { force: true });
    symlinkSync(path.relative(repo, path.join(snap, 'repodata')), tmpLink);
    renameSync(tmpLink, path.join(repo, 'repodata'));
    log.info(`published ${incoming.length} new package(s) into ${repo} (${all.length} in all, snapshot ${stamp})`);
    pruneSnapshots(snapsDir, snap, previous);
    return { repo, snapshot: stamp, added: incoming.map((r) => path.basename(r)), packages: all.length, seconds: (Date.now() - t0) / 1000 };
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
}

function pruneSnapshots(snapsDir: string, current: string, previous: string | undefined): void {
  const keep = new Set([current, previous].filter(Boolean).map((p) => path.basename(p!)));
  const all = readdirSync(snapsDir).sort();
  for (const s of all.slice(0, Math.max(0, all.length - KEEP_SNAPSHOTS))) {
    if (!keep.has(s)) rmSync(path.join(snapsDir, s), { recursive: true, force: true });
  }
}
