// Executes a build plan: layer by layer, each one a new qcow2 written as a `.partial` file next
// to its parent, checked, made read-only and renamed into place only when complete. The base
// builders, the backends and the fetcher are imported when a layer is built or fetched: a plan
// that reuses every layer loads none of them.
import { chmodSync, copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LayerDef, LayerSet } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { releaseStamp, vr, type BuildId } from '../records/build.js';
import { imageFileName, packageDiffFileName, packageListFileName, sshKeyFileName } from '../definitions/naming.js';
import type { BuildPlan } from '../plan/plan.js';
import type { BuildRecord, PackagesInfo } from '../records/build.js';
import type { Store } from '../store/store.js';
import * as qemuImg from '../tools/qemu-img.js';
import { diffPackages, diffSummary, formatPackageList, parsePackageList } from './packages.js';
import { adoptRootKey, pinKeyFileTime, type RootKey } from './root-key.js';
import { removeWorkDir } from './recover.js';
import type { Backend } from './backends/types.js';

export interface BuildResult {
  layer: string;
  action: 'built' | 'reused' | 'fetched';
  record: BuildRecord;
  seconds: number;
}

const BACKENDS: Record<'chroot' | 'guestfs', () => Promise<Backend>> = {
  chroot: async () => (await import('./backends/chroot.js')).chrootBackend,
  guestfs: async () => (await import('./backends/guestfs.js')).guestfsBackend,
};

/** A release stamp not used by any earlier build of the layer (two builds in one second). */
function newBuildId(ls: LayerSet, taken: Set<string>): BuildId {
  let release = releaseStamp(new Date());
  for (let n = 1; taken.has(release); n++) release = `${releaseStamp(new Date())}.${n}`;
  return { version: ls.set.distro.version, release };
}

export interface ExecuteOptions {
  /**
   * The build id (version-release) a layer is built under, instead of a new one from the clock:
   * a rebuild of a recorded build (reproduce/rebuild.ts) is that build again, under its name.
   */
  buildIds?: Map<string, BuildId>;
}

/** `rootKey`: the set's key pair (root-key.ts), needed when the plan builds a base layer. */
export async function executePlan(ls: LayerSet, plan: BuildPlan, store: Store, backendName: 'chroot' | 'guestfs', rootKey?: RootKey, o: ExecuteOptions = {}): Promise<BuildResult[]> {
  const setName = ls.set.name;
  store.ensure(setName);
  const imagesDir = store.imagesDir(setName);
  const done = new Map<string, BuildRecord>();
  const results: BuildResult[] = [];

  for (const [i, entry] of plan.entries.entries()) {
    checkInterrupted();
    const label = `[${i + 1}/${plan.entries.length}] ${entry.layer}`;
    if (entry.action === 'reuse') {
      log.info(`${label}: reusing ${entry.existing!.image}`);
      done.set(entry.layer, entry.existing!);
      results.push({ layer: entry.layer, action: 'reused', record: entry.existing!, seconds: 0 });
      continue;
    }
    const layer = ls.layers.get(entry.layer)!;
    const parent = layer.parent !== undefined ? done.get(layer.parent) : undefined;
    if (entry.action === 'fetch') {
      const t0 = Date.now();
      // Checked (digests, record, qemu-img check, parent build) before it becomes current.
      const { fetchLayer } = await import('./fetch.js');
      const rec = await fetchLayer(entry.remote!, store, setName, entry.layer, parent, ls.set.package.installDir);
      done.set(entry.layer, rec);
      if (rec.sshKey) adoptRootKey(ls, store, path.join(imagesDir, rec.sshKey.private), rec.manifest?.rootKey);
      results.push({ layer: entry.layer, action: 'fetched', record: rec, seconds: (Date.now() - t0) / 1000 });
      log.info(`${label}: ${rec.image} from the repository`);
      continue;
    }
    if (layer.parent !== undefined && !parent) throw new StepError(`internal: parent ${layer.parent} of ${layer.name} was not built first`);
    const id = o.buildIds?.get(layer.name) ?? newBuildId(ls, new Set(store.builds(setName, layer.name).map((b) => b.release)));
    const file = imageFileName(setName, layer.name, id);
    const partial = path.join(imagesDir, `.${file}.partial`);
    const compacting = path.join(imagesDir, `.${file}.compact.partial`);
    const keyFile = layer.base ? sshKeyFileName(setName, layer.name, id) : undefined;
    const keyPartial = keyFile ? path.join(imagesDir, `.${keyFile}.partial`) : undefined;
    const backend = await BACKENDS[backendName]();
    const work = store.workDir(`build-${layer.name}`);
    const started = new Date();
    log.info(`${label}: building ${file} (${entry.reason}) with the ${layer.base ? 'base' : backend.name} builder`);
    const listPartial = path.join(imagesDir, `.${packageListFileName(setName, layer.name, id)}.partial`);
    const diffPartial = path.join(imagesDir, `.${packageDiffFileName(setName, layer.name, id)}.partial`);
    let packages: PackagesInfo | undefined;
    try {
      let listText: string | undefined;
      if (layer.base) {
        if (!rootKey || rootKey.id !== entry.manifest.rootKey) throw new StepError(`internal: base layer '${layer.name}' planned without the set's root key`);
        // The set's one key pair, copied with the build: the package ships it from here.
        copyFileSync(rootKey.private, keyPartial!);
        chmodSync(keyPartial!, 0o600);
        writeFileSync(`${keyPartial}.pub`, `${rootKey.public}\n`, { mode: 0o644 });
        pinKeyFileTime(keyPartial!);
        pinKeyFileTime(`${keyPartial}.pub`);
        const { buildBase } = await import('./base.js');
        listText = await buildBase({ set: ls.set, layer, image: partial, sshPublicKey: rootKey.public, work, downloads: store.downloadsDir(), consoleDir: path.join(store.root, 'console'), key: entry.key, epoch: entry.manifest.sourceDateEpoch });
      } else {
        // The backing name is relative: the chain stays valid wherever the directory is installed.
        await qemuImg.create(partial, { backing: parent!.image });
        listText = await backend.customize({ set: ls.set, layer, image: partial, work, epoch: entry.manifest.sourceDateEpoch });
      }
      if (listText !== undefined) packages = writePackageFiles(imagesDir, setName, layer, id, listText, parent, listPartial, diffPartial);
      // fstrim leaves holes inside the qcow2 file, and rpm would install those holes as written
      // zeros. Rewriting it densely (only clusters that differ from the parent) costs about a
      // second per layer and shrank the upgrade layer's file from 541 to 276 MB.
      await qemuImg.compact(partial, compacting, parent?.image);
      renameSync(compacting, partial);
      await qemuImg.check(partial);
      chmodSync(partial, 0o444);
      if (keyFile) {
        renameSync(`${keyPartial}.pub`, path.join(imagesDir, `${keyFile}.pub`));
        renameSync(keyPartial!, path.join(imagesDir, keyFile));
      }
      if (packages) {
        renameSync(listPartial, path.join(imagesDir, packages.list));
        renameSync(diffPartial, path.join(imagesDir, packages.diff));
      }
      renameSync(partial, path.join(imagesDir, file));
    } catch (err) {
      // Nothing half-built survives a failure: a later step must never pick it up.
      for (const f of [partial, compacting, keyPartial, keyPartial && `${keyPartial}.pub`, listPartial, diffPartial]) if (f) rmSync(f, { force: true });
      throw err;
    } finally {
      removeWorkDir(work);
    }
    const info = await qemuImg.info(path.join(imagesDir, file));
    const seconds = (Date.now() - started.getTime()) / 1000;
    const record: BuildRecord = {
      schema: 1,
      set: setName,
      layer: layer.name,
      ...id,
      key: entry.key,
      manifest: entry.manifest,
      image: file,
      parent: parent ? { layer: parent.layer, version: parent.version, release: parent.release, image: parent.image } : undefined,
      sshKey: keyFile ? { private: keyFile, public: `${keyFile}.pub` } : undefined,
      packages,
      backend: layer.base ? 'base' : backend.name,
      builtAt: started.toISOString(),
      seconds,
      virtualSize: info['virtual-size'],
      allocatedSize: info['actual-size'],
    };
    store.commit(record);
    done.set(layer.name, record);
    results.push({ layer: layer.name, action: 'built', record, seconds });
    log.info(`${label}: built in ${seconds.toFixed(0)}s, ${(record.allocatedSize / 2 ** 20).toFixed(0)} MiB allocated`);
  }
  return results;
}

/**
 * Writes the guest's package list and its diff against the parent's (both to temporary names the
 * caller renames with the image) and says what changed; flags package steps that changed nothing.
 */
function writePackageFiles(imagesDir: string, setName: string, layer: LayerDef, id: BuildId, listText: string, parent: BuildRecord | undefined, listPartial: string, diffPartial: string): PackagesInfo {
  const list = parsePackageList(listText);
  const parentList = parent?.packages ? parsePackageList(readFileSync(path.join(imagesDir, parent.packages.list), 'utf8')) : undefined;
  // A parent built before package lists were recorded has none: the diff is then against nothing.
  if (parent && !parentList) log.warn(`${layer.name}: parent ${parent.layer} ${vr(parent)} has no package list; the diff lists every package as added`);
  const diff = diffPackages(parentList, list, layer.steps, parentList && parent ? `${parent.layer} ${vr(parent)}` : undefined);
  writeFileSync(listPartial, formatPackageList(list));
  writeFileSync(diffPartial, `${JSON.stringify(diff, null, 2)}\n`);
  log.info(`${layer.name}: packages: ${list.size} installed; ${diffSummary(diff)}`);
  if (diff.flagged) log.warn(`${layer.name}: ${diff.flagged}`);
  return {
    list: packageListFileName(setName, layer.name, id),
    diff: packageDiffFileName(setName, layer.name, id),
    count: list.size,
    added: diff.added.length,
    removed: diff.removed.length,
    upgraded: diff.upgraded.length,
    downgraded: diff.downgraded.length,
    flagged: diff.flagged,
  };
}

export function imageOf(store: Store, rec: BuildRecord): string {
  const p = store.imagePath(rec.set, rec.image);
  if (!existsSync(p)) throw new StepError(`image ${p} of ${rec.layer} ${rec.version}-${rec.release} is missing`);
  return p;
}
