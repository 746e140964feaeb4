// `ost-images build` once its options are checked: under the set's lock, plan, clear what a
// killed run left, build what the plan says, then finish the set (flattened variants and the
// manifest) or, for a throw-away layer built --with-packages, package only that layer if asked.
import { mkdirSync } from 'node:fs';
import { executePlan, imageOf, type BuildResult } from '../builder/build.js';
import { flattenLayers, type FlattenResult } from '../builder/flatten.js';
import { recoverOrphans } from '../builder/recover.js';
import type { LayerSet } from '../definitions/types.js';
import { chooseBackend, type BackendName } from '../tools/host.js';
import { log } from '../core/log.js';
import { writeManifest } from '../store/manifest.js';
import { packageBuild, type PackageResult } from '../package/package.js';
import { DEFAULT_PAYLOAD } from '../package/spec.js';
import type { BuildPlan } from '../plan/plan.js';
import { planWithRootKey } from '../builder/root-key.js';
import type { RemoteRef } from '../records/remote.js';
import type { Store } from '../store/store.js';

/** Makes the plan for the given identity of the set's root key (see builder/root-key.ts). */
export type MakePlan = (rootKey: string | undefined) => BuildPlan;

export interface SetBuild {
  set: string;
  backend: BackendName;
  layers: BuildResult[];
  flat: FlattenResult[];
}

export interface CustomBuild {
  set: string;
  backend: BackendName;
  layers: BuildResult[];
  package?: PackageResult;
}

/**
 * Plans (with `makePlan`) under the lock: a build that waited for another one reuses what that
 * one built. `then` runs under the lock too, so what it packages is what was just built.
 * `check` sees the plan before anything runs and may refuse it (a CI layer job refuses to build
 * a parent: parents come from the staging or production repository).
 */
export async function buildPlanned<T>(
  ls: LayerSet,
  store: Store,
  makePlan: MakePlan,
  requested: 'auto' | BackendName,
  remote: Map<string, RemoteRef> | undefined,
  then: (layers: BuildResult[], backend: BackendName) => Promise<T>,
  check?: (plan: BuildPlan) => void,
): Promise<T> {
  const unlock = await store.lock(ls.set.name);
  try {
    // With the set's root key (generated here, under the lock, if a base is to be built and the set has none).
    const { plan, rootKey } = await planWithRootKey(ls, store, remote, makePlan, { create: true });
    check?.(plan);
    const toBuild = plan.entries.filter((e) => e.action === 'build').length;
    const toFetch = plan.entries.filter((e) => e.action === 'fetch').length;
    await recoverOrphans(store);
    // Nothing to build needs no backend, so no KVM probe either.
    const backend = toBuild > 0 ? await chooseBackend(requested) : 'chroot';
    log.info(`set '${ls.set.name}': ${toBuild} layer(s) to build${toBuild ? `, backend ${backend}` : ''}${toFetch ? `, ${toFetch} to fetch` : ''}, store ${store.root}`);
    return await then(await executePlan(ls, plan, store, backend, rootKey), backend);
  } finally {
    unlock();
  }
}

/** Builds the set's layers the plan names, then its flattened variants and manifest. */
export function buildSet(ls: LayerSet, store: Store, makePlan: MakePlan, backend: 'auto' | BackendName, remote?: Map<string, RemoteRef>): Promise<SetBuild> {
  return buildPlanned(ls, store, makePlan, backend, remote, async (layers, used) => {
    const flat = await flattenLayers(ls, store);
    await writeManifest(ls, store);
    return { set: ls.set.name, backend: used, layers, flat };
  });
}

/**
 * Builds a throw-away layer (see builder/custom.ts) and what it needs. It is not in the set's
 * manifest, and is packaged only when asked (into `out`, else the store).
 */
export function buildCustom(ls: LayerSet, store: Store, makePlan: MakePlan, backend: 'auto' | BackendName, o: { name: string; package?: boolean; out?: string }, remote?: Map<string, RemoteRef>): Promise<{ result: CustomBuild; image: string }> {
  return buildPlanned(ls, store, makePlan, backend, remote, async (layers, used) => {
    const rec = store.current(ls.set.name, o.name)!;
    if (o.out) mkdirSync(o.out, { recursive: true });
    const pkg = o.package ? await packageBuild(ls, rec, store, ls.set.package.payload ?? DEFAULT_PAYLOAD, o.out) : undefined;
    return { result: { set: ls.set.name, backend: used, layers, package: pkg }, image: imageOf(store, rec) };
  });
}
