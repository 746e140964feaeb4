// What `cache gc` keeps. Pure. A build is kept when it is its layer's current build, one of its
// layer's `keep` newest, or published (its package is in the repository); and every build a kept
// build is made on is kept too, transitively: deleting a parent would break a kept child's chain.
import type { BuildRecord } from '../records/build.js';

export interface GcDecision {
  keep: BuildRecord[];
  remove: BuildRecord[];
}

const id = (b: { layer: string; release: string }): string => `${b.layer}@${b.release}`;

export function planGc(builds: BuildRecord[], current: BuildRecord[], opts: { keep: number; published: Set<string> }): GcDecision {
  const byId = new Map(builds.map((b) => [id(b), b]));
  const roots = new Set<string>(current.map(id));
  const byLayer = new Map<string, BuildRecord[]>();
  for (const b of builds) byLayer.set(b.layer, [...(byLayer.get(b.layer) ?? []), b]);
  for (const list of byLayer.values()) {
    list.sort((a, b) => (a.release < b.release ? 1 : -1)).slice(0, opts.keep).forEach((b) => roots.add(id(b)));
  }
  for (const b of builds) if (opts.published.has(id(b))) roots.add(id(b));
  const kept = new Set<string>();
  for (const r of roots) {
    for (let cur = byId.get(r); cur && !kept.has(id(cur)); cur = cur.parent ? byId.get(id(cur.parent)) : undefined) kept.add(id(cur));
  }
  return { keep: builds.filter((b) => kept.has(id(b))), remove: builds.filter((b) => !kept.has(id(b))) };
}
