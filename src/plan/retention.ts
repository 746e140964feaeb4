// Chain-aware retention: which builds of a repository (or of a test machine) to keep. Used by
// `publish --keep`, `ost-images prune` and `ost-images remove-old`. Unlike `dnf repomanage --keep`,
// which counts builds per name and ignores Requires, a build that a kept build requires is always
// kept: deleting it would leave the upper layer's Requires (and its qcow2 backing file) dangling.
import { ProvidesIndex, isRpmInternal, newestFirst, type PackageDeps } from '../core/rpmdeps.js';

/** One reason a build is kept. */
export interface KeepRule {
  rule: 'newest' | 'used' | 'pinned' | 'required';
  reason: string;
}

export interface RetentionDecision<P> {
  keep: P[];
  remove: P[];
  /** Why each kept package is kept, by package: "newest 2 of X" or "required by Y" (the first rule). */
  reasons: Map<P, string>;
  /** Every direct rule that keeps it (newest, used, pinned), or the one "required" rule. */
  rules: Map<P, KeepRule[]>;
}

/**
 * The "used" rule: builds downloaded within `withinDays` days before `now` are kept. `usage` is by
 * NVR (see publish/usage.ts); `now` is a parameter so planning never reads the clock.
 */
export interface UsedWithin {
  usage: ReadonlyMap<string, { downloads: number; lastDownloaded: string; partial?: number }>;
  withinDays: number;
  now: Date;
}

export const nvr = (p: PackageDeps): string => `${p.name}-${p.version}-${p.release}`;

const DAY_MS = 86_400_000;

/** The reason text of the used rule, e.g. "downloaded 3 times, last 2026-11-27T10:02:11Z (2 days ago, within 7)". */
export function usedReason(u: { downloads: number; lastDownloaded: string; partial?: number }, withinDays: number, now: Date): string {
  const ago = Math.max(0, Math.floor((now.getTime() - Date.parse(u.lastDownloaded)) / DAY_MS));
  const times = `${u.downloads} time${u.downloads === 1 ? '' : 's'}${u.partial ? ` (+${u.partial} partial)` : ''}`;
  const when = ago === 0 ? 'today' : `${ago} day${ago === 1 ? '' : 's'} ago`;
  return `downloaded ${times}, last ${u.lastDownloaded} (${when}, within ${withinDays})`;
}

/** Whether the last download lies within the window (a time after `now`, a clock ahead, counts). */
export function usedWithinWindow(u: { lastDownloaded: string } | undefined, withinDays: number, now: Date): boolean {
  if (!u) return false;
  const t = Date.parse(u.lastDownloaded);
  return Number.isFinite(t) && t >= now.getTime() - withinDays * DAY_MS;
}

/**
 * Keeps the `keep` newest builds of every top-level package name (a name no package in the set
 * requires: the leaves of the layer graph, e.g. engine-installed and host-installed), every build
 * downloaded within the `used` window (any layer: a test machine installing an old upgrade build
 * directly keeps it), every package in `pinned` (e.g. what is being published, or what a running
 * VM uses), and then, transitively, every build any kept package requires. When a Requires has
 * several providers (never for layer packages, which pin one exact build) the newest is kept
 * unless a kept one already satisfies it.
 */
export function planRetention<P extends PackageDeps>(packages: P[], keep: number, pinned: Iterable<P> = [], used?: UsedWithin): RetentionDecision<P> {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${keep}`);
  if (used && !(Number.isFinite(used.withinDays) && used.withinDays >= 0)) throw new RangeError(`withinDays must be a non-negative number, got ${used.withinDays}`);
  const index = new ProvidesIndex(packages);
  const requiredNames = new Set<string>();
  for (const p of packages) {
    for (const r of p.requires) {
      if (isRpmInternal(r)) continue;
      for (const provider of index.providers(r)) if (provider !== p) requiredNames.add(provider.name);
    }
  }
  const rules = new Map<P, KeepRule[]>();
  const add = (p: P, rule: KeepRule) => rules.set(p, [...(rules.get(p) ?? []), rule]);
  const byName = new Map<string, P[]>();
  for (const p of packages) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  for (const [name, builds] of byName) {
    if (requiredNames.has(name)) continue;
    for (const p of [...builds].sort(newestFirst).slice(0, keep)) add(p, { rule: 'newest', reason: `one of the ${keep} newest builds of ${name}` });
  }
  if (used) {
    for (const p of packages) {
      const u = used.usage.get(nvr(p));
      if (usedWithinWindow(u, used.withinDays, used.now)) add(p, { rule: 'used', reason: usedReason(u!, used.withinDays, used.now) });
    }
  }
  for (const p of pinned) if (!rules.get(p)?.some((r) => r.rule === 'pinned')) add(p, { rule: 'pinned', reason: 'pinned' });

  // Close over Requires, breadth first so every reason names the nearest kept dependent.
  const queue = [...rules.keys()];
  while (queue.length > 0) {
    const p = queue.shift()!;
    for (const r of p.requires) {
      if (isRpmInternal(r)) continue;
      const providers = index.providers(r).filter((q) => q !== p);
      if (providers.length === 0 || providers.some((q) => rules.has(q))) continue;
      const chosen = providers[0]!;
      rules.set(chosen, [{ rule: 'required', reason: `required by ${nvr(p)}` }]);
      queue.push(chosen);
    }
  }
  const reasons = new Map([...rules].map(([p, rs]) => [p, rs[0]!.reason]));
  return { keep: packages.filter((p) => rules.has(p)), remove: packages.filter((p) => !rules.has(p)), reasons, rules };
}
