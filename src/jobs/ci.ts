// What the generated pipeline's jobs do (`ost-images ci layer`, `ost-images ci boot`). Layers move
// between jobs through a staging DNF repository, never as CI artifacts (they are hundreds of MB to
// GB each):
//
//   layer job  plans its set with staging and production as cache repositories; if its layer's key
//              is already published in either, it says so and stops (the no-op night: nothing is
//              downloaded). Otherwise it fetches the parents from there (a layer job never builds
//              a parent), builds its layer, packages it (and its flattened variant) and publishes
//              the new packages into staging, or hands them to the site's upload command.
//              Staging always holds whole chains: a job adds the parents it fetched from
//              production too, so staging passes the closure check and a boot job installs from
//              one repository.
//   boot job   installs the chain of its layer's key from the repository that has it, with dnf
//              into a scratch root (as a test machine does), boots it and logs in over SSH with the
//              set's key, and writes a gate record into staging (gate.ts). The same builds already
//              booted by an earlier run are not booted again: the record is repeated.
//
// Promotion (publish/promote.ts) publishes into production exactly what the run's records passed.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSequence } from './sequence.js';
import { fetchLayer } from '../builder/fetch.js';
import { adoptRootKey, planWithRootKey, readRootKey } from '../builder/root-key.js';
import { consoleTail } from '../consume/guest-ssh.js';
import { installInto } from '../consume/install.js';
import type { RemoteRef } from '../records/remote.js';
import { remoteRootKey } from '../records/remote.js';
import { readRepoIndex, type RepoIndex, type RepoPackage } from '../repository/read.js';
import { testBoot } from '../consume/test-boot.js';
import type { LayerSet } from '../definitions/types.js';
import { EXIT_FAILED, OstError, StepError, UsageError, quote } from '../core/errors.js';
import type { BackendName } from '../tools/host.js';
import { log } from '../core/log.js';
import { writeManifest } from '../store/manifest.js';
import { packageLayers } from '../package/package.js';
import { computeKeys } from '../plan/keys.js';
import { FLAT_SUFFIX, flatImageFileName, imageFileName, packageName, rpmFileName } from '../definitions/naming.js';
import { chainOf, planBuild, requireLayer, topLayers, type BuildPlan } from '../plan/plan.js';
import { publish } from '../publish/publish.js';
import type { BuildRecord } from '../records/build.js';
import type { Store } from '../store/store.js';
import { runUpload } from '../tools/upload.js';
import type { GateRecord } from '../records/gate.js';
import { findPassed, gateFile, readGateRecord, writeGateRecord } from '../repository/gate.js';
import type { RepoLocation } from '../ci/locations.js';
import { runDigests } from './run-upstream.js';

export interface JobRepos {
  staging: RepoLocation;
  production: RepoLocation;
}

const short = (key: string): string => `${key.slice(0, 12)}…`;

/** Staging first: a key in both is taken from staging, where this pipeline's chains are whole. */
function mergedKeys(staging: RepoIndex, production: RepoIndex): Map<string, RemoteRef> {
  const m = new Map(production.keys);
  for (const [k, v] of staging.keys) m.set(k, v);
  return m;
}

interface Found {
  where: 'staging' | 'production';
  index: RepoIndex;
  pkg: RepoPackage;
  flat?: RepoPackage;
}

/**
 * The repository that publishes this layer key completely: the layer's package and, when the set
 * flattens the layer, the flattened package of the same build. Staging is looked at first.
 */
function findPublished(ls: LayerSet, layer: string, key: string, repos: [RepoIndex, RepoIndex]): Found | undefined {
  const names = ['staging', 'production'] as const;
  for (const [i, index] of repos.entries()) {
    const ref = index.keys.get(key);
    const pkg = ref && index.packages.find((p) => p.nvr === ref.nvr);
    if (!pkg) continue;
    let flat: RepoPackage | undefined;
    if (ls.set.flatten.includes(layer)) {
      const flatNvr = `${packageName(ls.set, `${layer}${FLAT_SUFFIX}`)}-${pkg.version}-${pkg.release}`;
      flat = index.packages.find((p) => p.nvr === flatNvr);
      if (!flat) continue;
    }
    return { where: names[i]!, index, pkg, flat };
  }
  return undefined;
}

async function readRepos(o: JobRepos): Promise<[RepoIndex, RepoIndex]> {
  const [staging, production] = await Promise.all([readRepoIndex(o.staging.url), readRepoIndex(o.production.url)]);
  if (!staging.published) log.info(`staging ${staging.url} has nothing published yet`);
  if (!production.published) log.info(`production ${production.url} has nothing published yet`);
  return [staging, production];
}

// --- the layer job ------------------------------------------------------------------------------

export interface LayerJobOptions extends JobRepos {
  /** The site's upload command; without one, packages are published into `staging.dir`. */
  upload?: string;
  backend: 'auto' | BackendName;
  offline?: boolean;
  /** The pipeline run: its jobs share one view of the upstream mirrors (run-upstream.ts). */
  run?: string;
}

export interface LayerJobResult {
  set: string;
  layer: string;
  key: string;
  /** already-*: the key was published, nothing was done; staged/uploaded: this job put it there. */
  status: 'already-staged' | 'already-in-production' | 'staged' | 'uploaded';
  package: string;
  flat?: string;
  /** What happened to each layer of the chain (empty when the key was already published). */
  layers: { layer: string; action: 'built' | 'reused' | 'fetched' }[];
  /** Package files this job added to staging. */
  staged: string[];
  /** The staging snapshot served afterwards (publishing into a directory). */
  snapshot?: string;
  seconds: number;
}

/**
 * The current builds the plan may reuse: the requested layer's own, and a parent's only when it is
 * the very build staging or production publishes for its key, with that package at hand. A parent
 * this runner built on its own is never used: its children would pin a build nobody published.
 */
function jobCurrent(ls: LayerSet, layer: string, store: Store, remote: Map<string, RemoteRef>): Map<string, BuildRecord | undefined> {
  return new Map(
    chainOf(ls, layer).map((l) => {
      const rec = store.current(ls.set.name, l);
      if (l === layer || !rec) return [l, rec];
      const published = rec.key ? remote.get(rec.key) : undefined;
      const usable = published?.release === rec.release && existsSync(path.join(store.rpmsDir(ls.set.name), rpmFileName(ls.set, l, rec)));
      return [l, usable ? rec : undefined];
    }),
  );
}

/** A layer job builds its own layer only: a parent must come from staging or production. */
function refuseParentBuilds(ls: LayerSet, layer: string, plan: BuildPlan): void {
  const built = plan.entries.filter((e) => e.layer !== layer && e.action === 'build');
  if (built.length === 0) return;
  const lines = built.map(
    (e) =>
      `parent '${e.layer}' (key ${short(e.key)}) is in neither staging nor production as a build this chain can use (${e.reason}); its job, 'ost-images ci layer --set ${ls.set.name} --layer ${e.layer}', must pass first`,
  );
  throw new StepError(
    `${ls.set.name} ${layer}: a layer job builds only its own layer, never a parent:\n  ${lines.join('\n  ')}\n` +
      `  (if that job passed, the parent's inputs differ here from its: another commit, or an upstream digest that moved between the two jobs)`,
  );
}

/**
 * A base job on a runner that has no key of the set (a fresh or ephemeral runner), for a set that
 * names no key file: the newest published base carries the set's key pair, so it is fetched and its
 * key adopted before the new base is built. Otherwise the build would generate a new key, and rpm
 * refuses to install a base with another key beside the installed builds (a file conflict on
 * `<set>_id_rsa`). Sets built by CI had better name their key (`ssh_key: {env: ...}`).
 */
export async function adoptPublishedKey(ls: LayerSet, layer: string, store: Store, remote: Map<string, RemoteRef>): Promise<void> {
  const set = ls.set.name;
  if (!ls.layers.get(layer)?.base || ls.set.sshKey || (await readRootKey(ls, store))) return;
  let ref: RemoteRef | undefined;
  for (const r of remote.values()) if (r.rootKey?.set === set && (!ref || r.release > ref.release)) ref = r;
  const baseLayer = ref && ls.order.find((l) => ls.layers.get(l)!.base && ref.nvr.startsWith(`${packageName(ls.set, l)}-`));
  if (!ref || !baseLayer) return;
  const unlock = await store.lock(set);
  try {
    if (await readRootKey(ls, store)) return; // Another job on this runner took it meanwhile.
    log.info(`${set} ${layer}: this runner has no root key of the set; taking the one ${ref.nvr} was made with, so the new base keeps it`);
    store.ensure(set);
    const rec = await fetchLayer(ref, store, set, baseLayer, undefined, ls.set.package.installDir);
    if (rec.sshKey) adoptRootKey(ls, store, store.imagePath(set, rec.sshKey.private), rec.manifest?.rootKey);
  } finally {
    unlock();
  }
}

export async function layerJob(ls: LayerSet, layer: string, store: Store, o: LayerJobOptions): Promise<LayerJobResult> {
  const t0 = Date.now();
  const set = ls.set.name;
  if (layer.endsWith(FLAT_SUFFIX) && ls.set.flatten.includes(layer.slice(0, -FLAT_SUFFIX.length))) {
    throw new UsageError(`--layer: ${quote(layer)} is a flattened variant: the job of layer '${layer.slice(0, -FLAT_SUFFIX.length)}' makes it`);
  }
  requireLayer(ls, layer);
  if (!o.upload && !o.staging.dir) throw new UsageError('the layer job publishes into the staging directory (--staging or OST_IMAGES_STAGING), or hands its packages to an upload command (--upload or OST_IMAGES_UPLOAD): give one');
  const upstream = await runDigests(ls, store.root, { staging: o.staging.dir, run: o.run, offline: o.offline });
  const repos = await readRepos(o);
  const remote = mergedKeys(...repos);
  const makePlan = (rootKey: string | undefined) => planBuild(ls, [layer], jobCurrent(ls, layer, store, remote), { upstream, remote, rootKey });

  // The key first, from the definitions alone: when it is published, no image is fetched at all.
  const { plan: probe } = await planWithRootKey(ls, store, remote, makePlan, { create: false });
  const key = probe.entries.find((e) => e.layer === layer)!.key;
  const there = findPublished(ls, layer, key, repos);
  if (there) {
    log.info(`${set} ${layer}: key ${short(key)} already ${there.where === 'staging' ? 'staged' : 'in production'} as ${there.pkg.nvr}${there.flat ? ` (and ${there.flat.nvr})` : ''}; nothing to do`);
    return {
      set, layer, key, status: there.where === 'staging' ? 'already-staged' : 'already-in-production',
      package: there.pkg.nvr, flat: there.flat?.nvr, layers: [], staged: [], seconds: (Date.now() - t0) / 1000,
    };
  }
  // Refused now, before the lock and before a root key could be generated for a base to build.
  refuseParentBuilds(ls, layer, probe);
  await adoptPublishedKey(ls, layer, store, remote);

  const made = await buildSequence(
    ls, store, { makePlan, backend: o.backend, remote, flatten: [layer], check: (plan) => refuseParentBuilds(ls, layer, plan) },
    async ({ layers }) => {
      const packaged = await packageLayers(ls, [layer], store);
      await writeManifest(ls, store);
      // The parents' packages too (fetched ones are kept in the store): staging holds whole chains.
      const parents = chainOf(ls, layer).slice(0, -1).map((l) => {
        const rec = store.current(set, l)!;
        const file = path.join(store.rpmsDir(set), rpmFileName(ls.set, l, rec));
        if (!existsSync(file)) throw new StepError(`internal: the package of parent ${l} ${rec.version}-${rec.release} is not in the store (${file})`);
        return file;
      });
      return { layers, files: [...parents, ...packaged.map((p) => p.rpm)], rec: store.current(set, layer)! };
    },
  );
  const nvrOf = (f: string) => path.basename(f).replace(/\.noarch\.rpm$/, '');
  const inStaging = new Set(repos[0].packages.map((p) => p.nvr));
  const toStage = made.files.filter((f) => !inStaging.has(nvrOf(f)));
  const pkg = `${packageName(ls.set, layer)}-${made.rec.version}-${made.rec.release}`;
  const flat = ls.set.flatten.includes(layer) ? `${packageName(ls.set, `${layer}${FLAT_SUFFIX}`)}-${made.rec.version}-${made.rec.release}` : undefined;
  const result: LayerJobResult = {
    set, layer, key, status: 'staged', package: pkg, flat,
    layers: made.layers.map((b) => ({ layer: b.layer, action: b.action })), staged: toStage.map((f) => path.basename(f)), seconds: 0,
  };
  if (o.upload) {
    log.info(`${set} ${layer}: uploading ${toStage.length} package(s) with the upload command`);
    await runUpload(o.upload, toStage, (l) => log.info(`  | ${l}`));
    // The command's word is not proof: staging must now publish the key.
    const after = await readRepoIndex(o.staging.url);
    if (!findPublished(ls, layer, key, [after, after])) {
      throw new StepError(`${set} ${layer}: the upload command ran, but staging (${o.staging.url}) does not publish ${pkg}${flat ? ` and ${flat}` : ''} (key ${short(key)}) afterwards: it must make the files appear in staging`);
    }
    result.status = 'uploaded';
  } else {
    const pub = await publish(o.staging.dir!, toStage, { url: o.staging.url });
    result.snapshot = pub.snapshot;
  }
  result.seconds = (Date.now() - t0) / 1000;
  log.info(`${set} ${layer}: ${result.status} ${pkg}${flat ? ` and ${flat}` : ''} (key ${short(key)}): ${result.layers.map((l) => `${l.layer} ${l.action}`).join(', ')}`);
  return result;
}

// --- the boot job -------------------------------------------------------------------------------

export interface BootJobOptions extends JobRepos {
  run: string;
  timeoutSec: number;
  offline?: boolean;
}

export interface BootJobResult {
  record: GateRecord;
  file: string;
  /** False when the result was taken from an earlier boot of the same builds. */
  booted: boolean;
}

/** The layer a boot target names, and whether it is the flattened variant. */
export function bootTarget(ls: LayerSet, target: string): { layer: string; flat: boolean } {
  const base = target.endsWith(FLAT_SUFFIX) ? target.slice(0, -FLAT_SUFFIX.length) : undefined;
  if (base !== undefined && ls.set.flatten.includes(base)) return { layer: base, flat: true };
  requireLayer(ls, target);
  return { layer: target, flat: false };
}

/** The chain a package pins, base first, from the repository's own metadata (what dnf will install). */
function chainIn(ls: LayerSet, layer: string, index: RepoIndex, top: RepoPackage): RepoPackage[] {
  const out = [top];
  let cur = top;
  for (let l = ls.layers.get(layer)!.parent; l !== undefined; l = ls.layers.get(l)!.parent) {
    const name = packageName(ls.set, l);
    const parent = cur.parentRelease !== undefined ? index.packages.find((p) => p.name === name && p.release === cur.parentRelease) : undefined;
    if (!parent) throw new StepError(`${cur.nvr} requires ${name} release ${cur.parentRelease ?? '(none named)'}, which ${index.url} does not publish`);
    out.unshift(parent);
    cur = parent;
  }
  return out;
}

const sameSet = (a: string[], b: string[]): boolean => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');

export async function bootJob(ls: LayerSet, target: string, store: Store, o: BootJobOptions): Promise<BootJobResult> {
  const set = ls.set.name;
  const { layer, flat } = bootTarget(ls, target);
  if (!topLayers(ls).includes(layer) && !flat) log.warn(`${set} ${layer} is not a top layer: promotion does not ask for its gate record`);
  const staging = o.staging.dir;
  if (!staging) throw new UsageError('the boot job writes its gate record into the staging directory: give --staging or OST_IMAGES_STAGING');
  const upstream = await runDigests(ls, store.root, { staging, run: o.run, offline: o.offline });
  const repos = await readRepos(o);
  // The key as the layer job computed it: the set's key (this store's, else the newest base's).
  const rootKey = (await readRootKey(ls, store))?.id ?? remoteRootKey(mergedKeys(...repos), set);
  const key = computeKeys(ls, upstream, rootKey).get(layer)!.key;
  const found = findPublished(ls, layer, key, repos);
  if (!found) {
    throw new StepError(`${set} ${target}: key ${short(key)} is in neither staging nor production: the job of layer '${layer}' ('ost-images ci layer --set ${set} --layer ${layer}') must pass before this boot job`);
  }
  const chain = flat ? [found.flat!] : chainIn(ls, layer, found.index, found.pkg);
  const nvrs = chain.map((p) => p.nvr);
  const file = gateFile(staging, set, o.run, target);
  const base: Omit<GateRecord, 'ok' | 'seconds' | 'finished'> = { schema: 1, run: o.run, set, layer: target, key, repo: found.where, nvrs, host: os.hostname() };

  const mine = readGateRecord(file);
  if (mine.state === 'present' && mine.record.ok && sameSet(mine.record.nvrs, nvrs)) {
    log.info(`${set} ${target}: ${nvrs.join(' ')} already passed in this run (${file}); not booting again`);
    return { record: mine.record, file, booted: false };
  }
  const earlier = findPassed(staging, set, target, nvrs);
  if (earlier) {
    const record: GateRecord = { ...base, ok: true, seconds: 0, sshSeconds: earlier.sshSeconds, finished: new Date().toISOString(), reusedFrom: earlier.reusedFrom ?? earlier.run };
    writeGateRecord(staging, record);
    log.info(`${set} ${target}: the same builds (${nvrs.join(' ')}) already booted in run ${record.reusedFrom}; recorded for run ${o.run} without booting again`);
    return { record, file, booted: false };
  }

  const root = store.workDir(`ci-boot-${target}`);
  const consoleLog = path.join(store.root, 'console', `ci-${set}-${target}-${o.run}.log`);
  try {
    log.info(`${set} ${target}: installing ${nvrs.join(' ')} from ${found.where} (${found.index.url}) and booting it`);
    let record: GateRecord;
    try {
      const installed = await installInto(root, found.index.url, nvrs);
      if (!sameSet(installed.installed, nvrs)) throw new StepError(`dnf installed ${installed.installed.join(' ')}, not exactly ${nvrs.join(' ')}`);
      const v = chain[chain.length - 1]!;
      const image = path.join(root, ls.set.package.installDir, flat ? flatImageFileName(set, layer, v) : imageFileName(set, layer, v));
      const b = await testBoot(image, { timeoutSec: o.timeoutSec, consoleLog, ssh: true });
      if (b.sshSeconds === undefined) throw new StepError(`${path.basename(image)} booted, but its chain ships no root key to log in with`);
      record = { ...base, ok: true, seconds: b.seconds, sshSeconds: b.sshSeconds, finished: new Date().toISOString() };
      rmSync(consoleLog, { force: true }); // Kept only when a boot fails.
    } catch (err) {
      // Bad input and interrupts are not a verdict on the builds: no record.
      if (!(err instanceof OstError) || err.exitCode !== EXIT_FAILED) throw err;
      const tail = existsSync(consoleLog) ? consoleTail(readFileSync(consoleLog, 'utf8')) : undefined;
      const error = err.message.split('\n')[0]!;
      writeGateRecord(staging, { ...base, ok: false, seconds: 0, finished: new Date().toISOString(), error, consoleTail: tail });
      throw new StepError(
        `${set} ${target}: boot test FAILED for run ${o.run} (${nvrs.join(' ')}): ${error}\n  gate record: ${file}` +
          (tail !== undefined ? `\n--- last lines of the serial console (${consoleLog}) ---\n${tail}` : ''),
      );
    }
    writeGateRecord(staging, record);
    log.info(`${set} ${target}: passed: userspace after ${record.seconds.toFixed(1)} s, SSH login after ${record.sshSeconds!.toFixed(1)} s; gate record ${file}`);
    return { record, file, booted: true };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
