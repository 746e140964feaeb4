// `ost-images all`, the main job for a developer: build what changed, package and publish the set,
// then do what a test machine does (install a top layer from the repository into a scratch root,
// verify its chain, boot it), timing every stage. Unlike nightly it is no gate: it publishes what
// it built before anything is installed or booted.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { type BuildResult } from '../builder/build.js';
import { installInto, type InstallResult } from '../consume/install.js';
import { bootImage, type BootResult } from '../consume/test-boot.js';
import { verifyChain, type ChainLink } from '../consume/verify.js';
import type { LayerSet } from '../definitions/types.js';
import { type BackendName } from '../tools/host.js';
import { writeManifest } from '../store/manifest.js';
import { currentRpms, packageLayers, type PackageResult } from '../package/package.js';
import { imageFileName, packageName, unqualifiedName } from '../definitions/naming.js';
import { planBuild } from '../plan/plan.js';
import { resolveUpstream } from '../plan/upstream.js';
import { publish, type PublishResult } from '../publish/publish.js';
import { Store } from '../store/store.js';
import { buildSequence } from './sequence.js';
import { StageRunner } from './stages.js';

export interface AllOptions {
  /** The store directory as given: the boot's console log goes under it. */
  store: string;
  repo: string;
  /** The layer installed from the repository and booted. */
  install: string;
  /** The scratch install root; emptied first. */
  root: string;
  backend: 'auto' | BackendName;
  boot: boolean;
  offline?: boolean;
}

export interface AllSummary {
  set: string;
  backend: BackendName;
  built: BuildResult[];
  packaged: PackageResult[];
  published: PublishResult;
  installed: InstallResult;
  image: string;
  chain: ChainLink[];
  boot?: BootResult;
  /** Seconds per stage. */
  stages: Record<string, number>;
}

type AllStage = 'upstream' | 'plan' | 'build' | 'package' | 'publish' | 'install' | 'verify' | 'boot';

export interface AllResult {
  summary: AllSummary;
  /** The package name installed (unqualified when the set is the default one). */
  wanted: string;
}

export async function all(ls: LayerSet, o: AllOptions): Promise<AllResult> {
  const store = new Store(o.store);
  const stages = new StageRunner<AllStage>('all');
  const upstream = await stages.run('upstream', () => resolveUpstream(ls, o.store, { offline: o.offline }));
  const makePlan = (k: string | undefined) => planBuild(ls, [], new Map(ls.order.map((l) => [l, store.current(ls.set.name, l)])), { upstream, rootKey: k });
  // Built and packaged under the set's lock; published, installed and booted after it.
  const { backend, built, packaged } = await buildSequence(ls, store, { makePlan, backend: o.backend, flatten: true, stages }, async (b) => {
    const packaged = await stages.run('package', () => packageLayers(ls, ls.order, store));
    await writeManifest(ls, store);
    return { backend: b.backend, built: b.layers, packaged };
  });
  const published = await stages.run('publish', () => publish(o.repo, currentRpms(ls, store)));
  rmSync(o.root, { recursive: true, force: true });
  const wanted = ls.set.package.default ? unqualifiedName(ls.set, o.install) : packageName(ls.set, o.install);
  const installed = await stages.run('install', () => installInto(o.root, o.repo, [wanted]));
  const top = store.current(ls.set.name, o.install)!;
  const installedImage = path.join(o.root, ls.set.package.installDir, imageFileName(ls.set.name, o.install, top));
  const chain = await stages.run('verify', () => verifyChain(installedImage));
  const boot = o.boot ? await stages.run('boot', () => bootImage(installedImage, 600, undefined, o.store)) : undefined;
  return { summary: { set: ls.set.name, backend, built, packaged, published, installed, image: installedImage, chain, boot, stages: stages.seconds as Record<string, number> }, wanted };
}
