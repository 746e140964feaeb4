// The one build sequence every job that builds runs (build, all, nightly, a CI layer job, the
// rebuild of verify --rebuild keeps its own scratch store and plan): under the set's lock,
//   1. reclaim what a killed run left;
//   2. plan, with the set's root key (generated here, under the lock, if a base is to be built and
//      the set has none) — a build that waited for another one plans afterwards and reuses it;
//   3. let the job refuse the plan (a CI layer job never builds a parent);
//   4. pick a backend only if something is built (no KVM probe for a build of nothing);
//   5. build what the plan says, then the set's flattened variants;
//   6. the job's own next steps (package, manifest, boot, publish...), still under the lock, so
//      what they take is exactly what was just built.
// Stages that a job times (plan, build) go through its StageRunner (stages.ts).
import { executePlan, type BuildResult } from '../builder/build.js';
import { flattenLayers, type FlattenResult } from '../builder/flatten.js';
import { recoverOrphans } from '../builder/recover.js';
import { planWithRootKey } from '../builder/root-key.js';
import { log } from '../core/log.js';
import type { LayerSet } from '../definitions/types.js';
import type { BuildPlan } from '../plan/plan.js';
import type { RemoteRef } from '../records/remote.js';
import type { Store } from '../store/store.js';
import { chooseBackend, type BackendName } from '../tools/host.js';
import type { StageRunner } from './stages.js';

/** Makes the plan for the given identity of the set's root key (see builder/root-key.ts). */
export type MakePlan = (rootKey: string | undefined) => BuildPlan;

export interface SequenceOptions {
  makePlan: MakePlan;
  backend: 'auto' | BackendName;
  /** Layer keys published in cache repositories (taken instead of built). */
  remote?: Map<string, RemoteRef>;
  /** Sees the plan before anything runs, and may refuse it (throw). */
  check?: (plan: BuildPlan) => void;
  /** After building: every flattened variant of the set (true), those of these layers, or none. */
  flatten?: boolean | string[];
  /** Times 'plan' and 'build' when given (the job's runner: it knows more stages). */
  stages?: Pick<StageRunner<'plan' | 'build'>, 'run'>;
}

export interface Built {
  plan: BuildPlan;
  /** 'chroot' when nothing was built (no backend was needed). */
  backend: BackendName;
  /** Whether anything was built (not only reused or fetched). */
  builtAny: boolean;
  layers: BuildResult[];
  flat: FlattenResult[];
}

export async function buildSequence<T>(ls: LayerSet, store: Store, o: SequenceOptions, then: (b: Built) => Promise<T>): Promise<T> {
  const unlock = await store.lock(ls.set.name);
  try {
    await recoverOrphans(store);
    const stage = <R>(name: 'plan' | 'build', fn: () => Promise<R>): Promise<R> => (o.stages ? o.stages.run(name, fn) : fn());
    const { plan, rootKey } = await stage('plan', () => planWithRootKey(ls, store, o.remote, o.makePlan, { create: true }));
    o.check?.(plan);
    const toBuild = plan.entries.filter((e) => e.action === 'build').length;
    const toFetch = plan.entries.filter((e) => e.action === 'fetch').length;
    const backend = toBuild > 0 ? await chooseBackend(o.backend) : 'chroot';
    log.info(`set '${ls.set.name}': ${toBuild} layer(s) to build${toBuild ? `, backend ${backend}` : ''}${toFetch ? `, ${toFetch} to fetch` : ''}, store ${store.root}`);
    const { layers, flat } = await stage('build', async () => {
      const layers = await executePlan(ls, plan, store, backend, rootKey);
      const flat = o.flatten ? await flattenLayers(ls, store, o.flatten === true ? undefined : o.flatten) : [];
      return { layers, flat };
    });
    return await then({ plan, backend, builtAny: toBuild > 0, layers, flat });
  } finally {
    unlock();
  }
}
