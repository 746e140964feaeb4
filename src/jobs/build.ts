// `ost-images build` once its options are checked: the build sequence (sequence.ts), then the
// set's manifest; or, for a throw-away layer built --with-packages, its package if asked.
import { mkdirSync } from 'node:fs';
import { imageOf, type BuildResult } from '../builder/build.js';
import { type FlattenResult } from '../builder/flatten.js';
import type { LayerSet } from '../definitions/types.js';
import { type BackendName } from '../tools/host.js';
import { writeManifest } from '../store/manifest.js';
import { packageBuild, type PackageResult } from '../package/package.js';
import { DEFAULT_PAYLOAD } from '../package/spec.js';
import type { RemoteRef } from '../records/remote.js';
import type { Store } from '../store/store.js';
import { buildSequence, type MakePlan } from './sequence.js';


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

/** Builds the set's layers the plan names, then its flattened variants and manifest. */
export function buildSet(ls: LayerSet, store: Store, makePlan: MakePlan, backend: 'auto' | BackendName, remote?: Map<string, RemoteRef>): Promise<SetBuild> {
  return buildSequence(ls, store, { makePlan, backend, remote, flatten: true }, async (b) => {
    await writeManifest(ls, store);
    return { set: ls.set.name, backend: b.backend, layers: b.layers, flat: b.flat };
  });
}

/**
 * Builds a throw-away layer (see builder/custom.ts) and what it needs. It is not in the set's
 * manifest, and is packaged only when asked (into `out`, else the store).
 */
export function buildCustom(ls: LayerSet, store: Store, makePlan: MakePlan, backend: 'auto' | BackendName, o: { name: string; package?: boolean; out?: string }, remote?: Map<string, RemoteRef>): Promise<{ result: CustomBuild; image: string }> {
  return buildSequence(ls, store, { makePlan, backend, remote }, async (b) => {
    const rec = store.current(ls.set.name, o.name)!;
    if (o.out) mkdirSync(o.out, { recursive: true });
    const pkg = o.package ? await packageBuild(ls, rec, store, ls.set.package.payload ?? DEFAULT_PAYLOAD, o.out) : undefined;
    return { result: { set: ls.set.name, backend: b.backend, layers: b.layers, package: pkg }, image: imageOf(store, rec) };
  });
}
