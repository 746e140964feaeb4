// The layer store as `ost-images cache` shows and trims it. What gc keeps is decided by the pure
// plan/gc.ts; this module gathers its inputs (builds, current builds, what a repository publishes)
// and deletes what it decided, under the set's lock.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { LayerSet } from '../definitions/types.js';
import { planGc } from '../plan/gc.js';
import { FLAT_SUFFIX, rpmFileName } from '../definitions/naming.js';
import type { BuildRecord } from '../records/build.js';
import type { Store } from './store.js';

export interface CachedBuild {
  layer: string;
  /** version-release */
  build: string;
  key: string | null;
  current: boolean;
  /** Its RPM is in the store. */
  packaged: boolean;
  allocatedMiB: number;
  /** `layer version-release` of the build it is made on. */
  parent: string | null;
}

export function listBuilds(ls: LayerSet, store: Store): CachedBuild[] {
  return ls.order.flatMap((layer) => {
    const cur = store.current(ls.set.name, layer)?.release;
    return store.builds(ls.set.name, layer).map((b) => ({
      layer,
      build: `${b.version}-${b.release}`,
      key: b.key ?? null,
      current: b.release === cur,
      packaged: existsSync(path.join(store.rpmsDir(ls.set.name), rpmFileName(ls.set, layer, b))),
      allocatedMiB: Math.round(b.allocatedSize / 2 ** 20),
      parent: b.parent ? `${b.parent.layer} ${b.parent.version}-${b.parent.release}` : null,
    }));
  });
}

export interface GcResult {
  removed: BuildRecord[];
  kept: number;
  freedBytes: number;
}

/**
 * Deletes the builds plan/gc.ts does not keep (with `dryRun`, only says which). A build whose
 * package is in `repo`'s pool counts as published and is kept.
 */
export async function collectGarbage(ls: LayerSet, store: Store, o: { keep: number; repo?: string; dryRun?: boolean }): Promise<GcResult> {
  const unlock = await store.lock(ls.set.name);
  try {
    const builds = ls.order.flatMap((l) => store.builds(ls.set.name, l));
    const current = ls.order.map((l) => store.current(ls.set.name, l)).filter((b): b is NonNullable<typeof b> => !!b);
    const poolFiles = o.repo && existsSync(path.join(o.repo, 'packages')) ? new Set(readdirSync(path.join(o.repo, 'packages'))) : new Set<string>();
    const published = new Set(builds.filter((b) => poolFiles.has(rpmFileName(ls.set, b.layer, b))).map((b) => `${b.layer}@${b.release}`));
    const d = planGc(builds, current, { keep: o.keep, published });
    // The flattened variant's package goes with its build.
    if (!o.dryRun) for (const b of d.remove) store.removeBuild(b, [rpmFileName(ls.set, b.layer, b), rpmFileName(ls.set, `${b.layer}${FLAT_SUFFIX}`, b)]);
    return { removed: d.remove, kept: d.keep.length, freedBytes: d.remove.reduce((a, b) => a + b.allocatedSize, 0) };
  } finally {
    unlock();
  }
}
