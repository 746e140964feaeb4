// Chain-aware retention: which builds of a repository (or of a test machine) to keep. Used by
// `publish --keep`, `ost-images prune` and `ost-images remove-old`. Unlike `dnf repomanage --keep`,
// which counts builds per name and ignores Requires, a build that a kept build requires is always
// kept: deleting it would leave the upper layer's Requires (and its qcow2 backing file) dangling.
import { ProvidesIndex, isRpmInternal, newestFirst, type PackageDeps } from '../rpmdeps.js';

export interface RetentionDecision<P> {
  keep: P[];
  remove: P[];
  /** Why each kept package is kept, by package: "newest 2 of X" or "required by Y". */
  reasons: Map<P, string>;
}

export const nvr = (p: PackageDeps): string => `${p.name}-${p.version}-${p.release}`;

/**
 * Keeps the `keep` newest builds of every top-level package name (a name no package in the set
 * requires: the leaves of the layer graph, e.g. engine-installed and host-installed), every package
 * in `pinned` (e.g. what is being published, or what a running VM uses), and then, transitively,
 * every build any kept package requires. When a Requires has several providers (never for layer
 * packages, which pin one exact build) the newest is kept unless a kept one already satisfies it.
 */
export function planRetention<P extends PackageDeps>(packages: P[], keep: number, pinned: Iterable<P> = []): RetentionDecision<P> {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${keep}`);
  const index = new ProvidesIndex(packages);
  const requiredNames = new Set<string>();
  for (const p of packages) {
    for (const r of p.requires) {
      if (isRpmInternal(r)) continue;
      for (const provider of index.providers(r)) if (provider !== p) requiredNames.add(provider.name);
    }
  }
  const reasons = new Map<P, string>();
  const byName = new Map<string, P[]>();
  for (const p of packages) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  for (const [name, builds] of byName) {
    if (requiredNames.has(name)) continue;
    for (const p of [...builds].sort(newestFirst).slice(0, keep)) reasons.set(p, `one of the ${keep} newest builds of ${name}`);
  }
  for (const p of pinned) if (!reasons.has(p)) reasons.set(p, 'pinned');

  // Close over Requires, breadth first so every reason names the nearest kept dependent.
  const queue = [...reasons.keys()];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const r of p.requires) {
      if (isRpmInternal(r)) continue;
      const providers = index.providers(r).filter((q) => q !== p);
      if (providers.length === 0 || providers.some((q) => reasons.has(q))) continue;
      const chosen = providers[0]!;
      reasons.set(chosen, `required by ${nvr(p)}`);
      queue.push(chosen);
    }
  }
  return { keep: packages.filter((p) => reasons.has(p)), remove: packages.filter((p) => !reasons.has(p)), reasons };
}
