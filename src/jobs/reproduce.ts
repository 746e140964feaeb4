// `ost-images verify --rebuild LAYER...`: is a build what its inputs say it is? Each layer's build
// (the store's current one, or the newest a cache repository publishes) is built again from its
// recorded inputs, in a scratch store, on the very parent builds it was made on and under its own
// build id, and the two are compared:
//   - the file trees, path by path (compare.ts): the guarantee for every layer;
//   - the qcow2 bytes: the guarantee for a base made by mmdebstrap (repack.ts);
//   - the package payloads, when the build has a package: the same files under the same names
//     (a verdict only where the image's bytes are guaranteed; otherwise the image inside differs).
// A build can only be checked where its inputs still are: the set's definitions must give its key
// again, and the upstream metadata its chain recorded must still be what the mirror serves (a
// rebuild from a mirror that moved would install other packages). Otherwise the layer is "not
// checked", saying why. Verdicts: identical (exit 0), different (exit 1), not checked (exit 2).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, linkSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { executePlan } from '../builder/build.js';
import { mountImageReadOnly } from '../builder/disk.js';
import { fetchLayer } from '../builder/fetch.js';
import { publicKeyId, type RootKey } from '../builder/root-key.js';
import type { RemoteRef } from '../records/remote.js';
import { readRepoIndex, type RepoIndex } from '../repository/read.js';
import type { LayerSet } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { chooseBackend, type BackendName } from '../tools/host.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { packageBuild } from '../package/package.js';
import { DEFAULT_PAYLOAD } from '../package/spec.js';
import { keyOf, layerManifest, manifestDiff } from '../plan/keys.js';
import { vr } from '../records/build.js';
import { packageName, rpmFileName } from '../definitions/naming.js';
import type { PlanEntry } from '../plan/plan.js';
import { resolveUpstream } from '../plan/upstream.js';
import { withScope } from '../core/scope.js';
import type { BuildRecord } from '../records/build.js';
import { Store } from '../store/store.js';
import { payloadDigests } from '../tools/rpm-payload.js';
import { aspectCounts, compareTrees, splitKnown, type Aspect, type PathDifference } from '../reproduce/compare.js';
import { walkTree } from '../reproduce/tree.js';
import { differingBytes, overlayBlockDiff, type BlockDiff } from '../reproduce/blocks.js';

export type ReproStatus = 'identical' | 'different' | 'not-checked';

export interface ReproVerdict {
  layer: string;
  /** The build checked, version-release. */
  build?: string;
  key?: string;
  status: ReproStatus;
  /** Not checked: why; different: a summary. */
  reason?: string;
  /** Where the build checked came from. */
  source?: 'store' | 'repository';
  /**
   * `guaranteed`: the same bytes are promised (a mmdebstrap base). When they differ: the bytes of the
   * qcow2 files that differ, and the 4 KiB guest blocks of the overlays that do (blocks.ts).
   */
  image?: { bytesIdentical: boolean; sha256: string; rebuiltSha256: string; guaranteed: boolean; differingBytes?: number; blocks?: BlockDiff };
  /**
   * `differing` and `paths`: what makes the build different; `known`: differences the layer declares
   * (known_differences), with why, which do not.
   */
  tree?: { entries: number; identical: number; differing: number; aspects: Partial<Record<Aspect, number>>; paths: PathDifference[]; known: (PathDifference & { why: string })[] };
  payload?: { identical: boolean; digest: string; rebuiltDigest: string; files: string; rebuiltFiles: string };
  seconds: number;
  /** With keepScratch: the scratch store holding the rebuild. */
  scratch?: string;
}

export interface RebuildOptions {
  layers: string[];
  /** Repositories (directories or URLs) to take the build checked, or its parents, from. */
  cacheRepos?: string[];
  backend: 'auto' | BackendName;
  /** Do not fetch upstream digests: trust that the mirror still serves what the build recorded. */
  offline?: boolean;
  /** Keep the scratch store (its path is in the verdict). */
  keepScratch?: boolean;
  /** At most this many differing paths in a verdict (all are counted). */
  maxPaths?: number;
  /**
   * Where the image bytes differ, also count the differing 4 KiB blocks of the overlays
   * (blocks.ts): reads both chains whole through FUSE, which can take minutes on a big layer.
   */
  blocks?: boolean;
}

/** Exit code for a list of verdicts: 1 if any differs, else 2 if any was not checked, else 0. */
export function verdictExitCode(v: ReproVerdict[]): number {
  if (v.some((x) => x.status === 'different')) return 1;
  if (v.some((x) => x.status === 'not-checked')) return 2;
  return 0;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** One build of the chain checked, with the directory its files are in. */
interface Located {
  rec: BuildRecord;
  /** The images directory holding its image and files. */
  dir: string;
  /** Its package, when one is at hand. */
  rpm?: string;
}

class NotChecked extends Error {}

/** The build's files in `dir` that a store holds beside its image. */
function buildFiles(rec: BuildRecord): string[] {
  return [rec.image, rec.sshKey?.private, rec.sshKey?.public, rec.packages?.list, rec.packages?.diff].filter((f): f is string => !!f);
}

/**
 * The build checked and its ancestors, base first: from the store, else from the cache
 * repositories (fetched into `fetched`, a scratch store).
 */
async function locateChain(ls: LayerSet, store: Store, layer: string, repos: RepoIndex[], fetched: () => Store): Promise<Located[]> {
  const set = ls.set.name;
  const fromStore = (rec: BuildRecord): Located => {
    const rpm = path.join(store.rpmsDir(set), rpmFileName(ls.set, rec.layer, rec));
    return { rec, dir: store.imagesDir(set), rpm: existsSync(rpm) ? rpm : undefined };
  };
  const top = store.current(set, layer);
  if (top) {
    const chain: Located[] = [fromStore(top)];
    for (let cur = top; cur.parent; ) {
      const p = cur.parent;
      const parent = store.builds(set, p.layer).find((b) => b.release === p.release);
      if (!parent || !existsSync(store.imagePath(set, parent.image))) throw new NotChecked(`its parent ${p.layer} ${vr(p)} is no longer in the store`);
      chain.unshift(fromStore(parent));
      cur = parent;
    }
    return chain;
  }
  if (repos.length === 0) throw new NotChecked(`the store has no build of it (give --cache-repo to check a published one)`);
  // The newest published build of the layer, then its parents by the exact releases they pin.
  const find = (name: string, release?: string): { ref: RemoteRef; parentRelease?: string } | undefined => {
    for (const r of repos) {
      const pkgs = r.packages.filter((p) => p.name === name && p.key && (release === undefined || p.release === release)).sort((a, b) => (a.release < b.release ? 1 : -1));
      const p = pkgs[0];
      const ref = p?.key ? r.keys.get(p.key) : undefined;
      if (p && ref) return { ref: { ...ref, href: p.href, sha256: p.sha256, nvr: p.nvr, release: p.release, parentRelease: p.parentRelease }, parentRelease: p.parentRelease };
    }
    return undefined;
  };
  const refs: { layer: string; ref: RemoteRef }[] = [];
  let release: string | undefined;
  for (let cur: string | undefined = layer; cur !== undefined; cur = ls.layers.get(cur)!.parent) {
    const hit = find(packageName(ls.set, cur), release);
    if (!hit) throw new NotChecked(release === undefined ? 'neither the store nor the cache repositories have a build of it' : `its parent ${cur} ${ls.set.distro.version}-${release} is neither in the store nor in a cache repository`);
    refs.unshift({ layer: cur, ref: hit.ref });
    release = hit.parentRelease;
  }
  const into = fetched();
  into.ensure(set);
  const chain: Located[] = [];
  for (const { layer: l, ref } of refs) {
    checkInterrupted();
    const rec = await fetchLayer(ref, into, set, l, chain[chain.length - 1]?.rec, ls.set.package.installDir);
    chain.push({ rec, dir: into.imagesDir(set), rpm: path.join(into.rpmsDir(set), path.basename(ref.href)) });
  }
  return chain;
}

/** Why the build cannot be made again here, or undefined when its inputs are all at hand. */
async function inputsProblem(ls: LayerSet, storeRoot: string, chain: Located[], offline: boolean): Promise<string | undefined> {
  const target = chain[chain.length - 1]!.rec;
  const m = target.manifest;
  if (!m || !target.key) return 'its build record holds no input manifest (made by an older ost-images)';
  if (m.sourceDateEpoch === undefined) return 'it was built before builds were reproducible (no SOURCE_DATE_EPOCH in its inputs)';
  const def = ls.layers.get(target.layer)!;
  // The layer's inputs as the definitions give them now, with what the build recorded of the world
  // (upstream digests, its time, the parent's key, the root key).
  const now = { ...layerManifest(ls, def, m.parent?.key, { digests: m.upstream ?? {}, dates: {} }, m.rootKey), sourceDateEpoch: m.sourceDateEpoch };
  if (keyOf(now) !== target.key) {
    return `the definitions in ${ls.set.dir} are not the ones it was made from: ${manifestDiff(m, now).join('; ')}`;
  }
  if (offline) {
    log.warn(`${target.layer}: --offline: assuming the mirror still serves the upstream metadata the build recorded`);
    return undefined;
  }
  const recorded: Record<string, string> = {};
  for (const { rec } of chain) Object.assign(recorded, rec.manifest?.upstream ?? {});
  if (Object.keys(recorded).length === 0) return undefined;
  const current = (await resolveUpstream(ls, storeRoot, {})).digests;
  const moved = Object.entries(recorded).filter(([u, d]) => current[u] !== undefined && current[u] !== d).map(([u]) => u);
  return moved.length > 0 ? `the mirror has moved since it was built (${moved.join(', ')} changed): a rebuild now would install other packages` : undefined;
}

/** The parents of the build into the scratch store, as hard links of the same bytes. */
function linkParents(scratch: Store, set: string, chain: Located[]): void {
  scratch.ensure(set);
  for (const { rec, dir } of chain.slice(0, -1)) {
    for (const f of buildFiles(rec)) linkSync(path.join(dir, f), scratch.imagePath(set, f));
    scratch.commit(rec);
  }
}

/** The root key a base was made with: the pair shipped beside it. */
function rootKeyOf(loc: Located): RootKey | undefined {
  const k = loc.rec.sshKey;
  if (!k) return undefined;
  const pub = readFileSync(path.join(loc.dir, k.public), 'utf8').trim();
  return { private: path.join(loc.dir, k.private), public: pub, id: publicKeyId(pub), source: 'store' };
}

async function checkLayer(ls: LayerSet, store: Store, layer: string, repos: RepoIndex[], o: RebuildOptions): Promise<ReproVerdict> {
  const t0 = Date.now();
  const set = ls.set.name;
  const scratchDirs: string[] = [];
  const scratch = (label: string) => {
    const dir = store.workDir(label);
    scratchDirs.push(dir);
    return new Store(dir);
  };
  const verdict: ReproVerdict = { layer, status: 'not-checked', seconds: 0 };
  let keep: string | undefined;
  try {
    const chain = await locateChain(ls, store, layer, repos, () => scratch(`verify-fetched-${layer}`));
    const target = chain[chain.length - 1]!;
    verdict.build = vr(target.rec);
    verdict.key = target.rec.key;
    verdict.source = target.dir === store.imagesDir(set) ? 'store' : 'repository';
    const problem = await inputsProblem(ls, store.root, chain, o.offline ?? false);
    if (problem) throw new NotChecked(problem);
    const def = ls.layers.get(layer)!;
    const rebuilt = scratch(`verify-rebuild-${layer}`);
    linkParents(rebuilt, set, chain);
    const rootKey = def.base ? rootKeyOf(target) : undefined;
    if (def.base && (!rootKey || rootKey.id !== target.rec.manifest!.rootKey)) throw new NotChecked('the root key shipped with it is not the one its inputs name');
    log.info(`${layer}: rebuilding ${verdict.build} from its recorded inputs (key ${target.rec.key!.slice(0, 12)}) in ${rebuilt.root}`);
    const entries: PlanEntry[] = chain.map(({ rec }, i) => ({
      layer: rec.layer,
      parent: rec.parent?.layer,
      key: rec.key ?? '',
      action: i < chain.length - 1 ? 'reuse' : 'build',
      reason: i < chain.length - 1 ? `the parent the build was made on: ${vr(rec)}` : `rebuild of ${vr(rec)}`,
      changes: [],
      manifest: rec.manifest!,
      existing: i < chain.length - 1 ? rec : undefined,
    }));
    const backend = await chooseBackend(o.backend);
    const [result] = (await executePlan(ls, { set, entries }, rebuilt, backend, rootKey, { buildIds: new Map([[layer, { version: target.rec.version, release: target.rec.release }]]) })).filter((r) => r.action === 'built');
    if (!result) throw new StepError(`${layer}: the rebuild built nothing`);
    checkInterrupted();
    const original = path.join(target.dir, target.rec.image);
    const again = rebuilt.imagePath(set, result.record.image);
    const [sha, sha2] = [await sha256File(original), await sha256File(again)];
    const guaranteed = def.base?.method === 'mmdebstrap';
    verdict.image = { bytesIdentical: sha === sha2, sha256: sha, rebuiltSha256: sha2, guaranteed };
    if (sha !== sha2) {
      verdict.image.differingBytes = differingBytes(original, again);
      if (o.blocks) verdict.image.blocks = await overlayBlockDiff(original, again, rebuilt.tmpDir());
    }
    log.info(`${layer}: comparing the file trees of ${target.rec.image} and its rebuild`);
    const trees = await withScope(async (scope) => {
      const [ra, rb] = [await mountImageReadOnly(scope, original, path.join(rebuilt.tmpDir(), 'mnt-original')), await mountImageReadOnly(scope, again, path.join(rebuilt.tmpDir(), 'mnt-rebuilt'))];
      // Both at once: one waits on its disk while the other hashes.
      const [a, b] = await Promise.all([walkTree(ra), walkTree(rb)]);
      return compareTrees(a, b);
    });
    const { known, unexpected } = splitKnown(trees.differing, def.knownDifferences);
    verdict.tree = { entries: trees.entries, identical: trees.identical, differing: unexpected.length, aspects: aspectCounts({ ...trees, differing: unexpected }), paths: unexpected.slice(0, o.maxPaths ?? 200), known };
    if (target.rpm && existsSync(target.rpm)) {
      const mine = await packageBuild(ls, result.record, rebuilt, ls.set.package.payload ?? DEFAULT_PAYLOAD);
      const [d1, d2] = [await payloadDigests(target.rpm), await payloadDigests(mine.rpm)];
      verdict.payload = { identical: d1.uncompressed === d2.uncompressed, digest: d1.compressed, rebuiltDigest: d2.compressed, files: d1.uncompressed, rebuiltFiles: d2.uncompressed };
    }
    const problems: string[] = [];
    if (unexpected.length > 0) problems.push(`${unexpected.length} path(s) differ`);
    if (guaranteed && !verdict.image.bytesIdentical) problems.push('the qcow2 bytes differ');
    if (guaranteed && verdict.payload && !verdict.payload.identical) problems.push('the package payloads differ');
    verdict.status = problems.length === 0 ? 'identical' : 'different';
    if (problems.length > 0) verdict.reason = problems.join(', ');
    if (o.keepScratch) keep = verdict.scratch = rebuilt.root;
  } catch (err) {
    if (!(err instanceof NotChecked)) throw err;
    verdict.reason = err.message;
  } finally {
    for (const d of scratchDirs) if (d !== keep) rmSync(d, { recursive: true, force: true });
  }
  verdict.seconds = (Date.now() - t0) / 1000;
  return verdict;
}

/**
 * Checks each requested layer's build by rebuilding it (see the top of this file). The caller
 * holds the set's lock: the builds checked and their parents must stay while this runs.
 */
export async function verifyRebuild(ls: LayerSet, store: Store, o: RebuildOptions): Promise<ReproVerdict[]> {
  mkdirSync(store.tmpDir(), { recursive: true });
  const repos: RepoIndex[] = [];
  for (const r of o.cacheRepos ?? []) repos.push(await readRepoIndex(r));
  const out: ReproVerdict[] = [];
  for (const layer of o.layers) {
    checkInterrupted();
    out.push(await checkLayer(ls, store, layer, repos, o));
  }
  return out;
}

/** People's lines for a verdict. */
export function describeVerdict(v: ReproVerdict, maxPaths = 20): string[] {
  const head = `${v.layer}${v.build ? ` ${v.build}` : ''}: ${v.status === 'identical' ? 'IDENTICAL' : v.status === 'different' ? 'DIFFERENT' : 'NOT CHECKED'}${v.reason ? ` (${v.reason})` : ''}`;
  const lines = [head];
  if (v.tree) lines.push(`  files: ${v.tree.identical} of ${v.tree.entries} identical, ${v.tree.differing} differ${v.tree.differing ? ` (${Object.entries(v.tree.aspects).map(([a, n]) => `${a} ${n}`).join(', ')})` : ''}${v.tree.known.length ? `, ${v.tree.known.length} known to differ` : ''}`);
  for (const k of v.tree?.known ?? []) lines.push(`  known: ${k.path}: ${k.aspects.join(', ')} (${k.why})`);
  if (v.image) {
    const blocks = v.image.bytesIdentical ? '' : `; ${v.image.blocks ? `${v.image.blocks.differing} of the ${v.image.blocks.blocks} 4 KiB blocks the overlays hold differ, ` : ''}${v.image.differingBytes} bytes of the files`;
    lines.push(`  image: ${v.image.bytesIdentical ? 'the same bytes' : `different bytes${v.image.guaranteed ? '' : ' (not guaranteed for this layer: it is written through a mounted file system)'}`} (sha256 ${v.image.sha256.slice(0, 16)}…${v.image.bytesIdentical ? '' : ` / ${v.image.rebuiltSha256.slice(0, 16)}…`}${blocks})`);
  }
  if (v.payload) lines.push(`  package payload: ${v.payload.identical ? 'the same files' : v.image?.guaranteed ? 'different' : 'different (it holds the image, whose bytes are not guaranteed)'} (digest ${v.payload.digest.slice(0, 16)}…${v.payload.digest === v.payload.rebuiltDigest ? ', compressed the same' : ` / ${v.payload.rebuiltDigest.slice(0, 16)}…`})`);
  for (const d of v.tree?.paths.slice(0, maxPaths) ?? []) lines.push(`  ${d.path}: ${d.aspects.join(', ')}: ${d.detail}`);
  if (v.tree && v.tree.differing > maxPaths) lines.push(`  ... and ${v.tree.differing - maxPaths} more (--json lists up to 200)`);
  if (v.scratch) lines.push(`  rebuild kept in ${v.scratch}`);
  return lines;
}
