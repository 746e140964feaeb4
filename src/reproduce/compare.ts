// How two file trees of one layer differ (tree.ts), path by path and in what: content, type, mode,
// owner, time, link target, device; or present in one only. Like diffoscope's summary, for the
// question "is this build what its inputs say?". Pure.
import type { Tree, TreeEntry } from './tree.js';

export type Aspect = 'missing' | 'extra' | 'type' | 'content' | 'mode' | 'owner' | 'mtime' | 'target' | 'device';

export interface PathDifference {
  path: string;
  /** `missing`: only in the first tree (the build being checked); `extra`: only in the second. */
  aspects: Aspect[];
  /** A line for people: what each side has. */
  detail: string;
}

export interface TreeComparison {
  /** Entries in the first tree. */
  entries: number;
  identical: number;
  differing: PathDifference[];
}

const octal = (m: number) => m.toString(8).padStart(4, '0');
const when = (ns: string) => new Date(Number(BigInt(ns) / 1000000n)).toISOString();

function differ(a: TreeEntry, b: TreeEntry): { aspects: Aspect[]; detail: string[] } {
  const aspects: Aspect[] = [];
  const detail: string[] = [];
  if (a.type !== b.type) {
    aspects.push('type');
    detail.push(`type ${a.type} / ${b.type}`);
    return { aspects, detail };
  }
  if (a.sha256 !== b.sha256 || a.size !== b.size) {
    aspects.push('content');
    detail.push(`content ${a.size} bytes sha256 ${a.sha256?.slice(0, 12)}… / ${b.size} bytes sha256 ${b.sha256?.slice(0, 12)}…`);
  }
  if (a.mode !== b.mode) {
    aspects.push('mode');
    detail.push(`mode ${octal(a.mode)} / ${octal(b.mode)}`);
  }
  if (a.uid !== b.uid || a.gid !== b.gid) {
    aspects.push('owner');
    detail.push(`owner ${a.uid}:${a.gid} / ${b.uid}:${b.gid}`);
  }
  if (a.mtime !== b.mtime) {
    aspects.push('mtime');
    detail.push(`mtime ${when(a.mtime)} / ${when(b.mtime)}`);
  }
  if (a.target !== b.target) {
    aspects.push('target');
    detail.push(`target ${a.target} / ${b.target}`);
  }
  if (a.rdev !== b.rdev) {
    aspects.push('device');
    detail.push(`device ${a.rdev} / ${b.rdev}`);
  }
  return { aspects, detail };
}

/** Compares `a` (the build checked) with `b` (its rebuild); differences sorted by path. */
export function compareTrees(a: Tree, b: Tree): TreeComparison {
  const differing: PathDifference[] = [];
  let identical = 0;
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(p);
    const y = b.get(p);
    if (!y) differing.push({ path: p, aspects: ['missing'], detail: `only in the first (${x!.type})` });
    else if (!x) differing.push({ path: p, aspects: ['extra'], detail: `only in the second (${y.type})` });
    else {
      const d = differ(x, y);
      if (d.aspects.length === 0) identical++;
      else differing.push({ path: p, aspects: d.aspects, detail: d.detail.join('; ') });
    }
  }
  return { entries: a.size, identical, differing };
}

/** Counts of differing paths by aspect, for a one-line summary. */
export function aspectCounts(c: TreeComparison): Partial<Record<Aspect, number>> {
  const out: Partial<Record<Aspect, number>> = {};
  for (const d of c.differing) for (const a of d.aspects) out[a] = (out[a] ?? 0) + 1;
  return out;
}

/** A `known_differences` path as a regular expression: `*` within a name, `**` across folders. */
export function knownPathPattern(glob: string): RegExp {
  const re = glob
    .split(/(\*\*\/?|\*)/)
    .map((part) => (part.startsWith('**') ? (part.endsWith('/') ? '(?:.*/)?' : '.*') : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${re}$`);
}

/**
 * The differences a layer declares known (`known_differences`: a path and why), apart from the
 * others: only the others make a build "different".
 */
export function splitKnown(differing: PathDifference[], known: { path: string; why: string }[]): { known: (PathDifference & { why: string })[]; unexpected: PathDifference[] } {
  const patterns = known.map((k) => ({ re: knownPathPattern(k.path), why: k.why }));
  const out = { known: [] as (PathDifference & { why: string })[], unexpected: [] as PathDifference[] };
  for (const d of differing) {
    const hit = patterns.find((p) => p.re.test(d.path));
    if (hit) out.known.push({ ...d, why: hit.why });
    else out.unexpected.push(d);
  }
  return out;
}
