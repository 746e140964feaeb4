// The publish stage's planner: from the served snapshot's index, the headers of the packages
// offered and the options, everything a publish decides, as data: what is new, what it refuses
// (two sets claiming one short name, a Requires nothing provides, an unsigned snapshot replacing a
// signed one), what retention keeps and by which rule, what gets signed or re-signed, and what the
// new snapshot lists. Pure: it reads no file, no clock and no usage record, and starts no process;
// its callers read those first (publish.ts) and hand them in. `publish`, `prune`, `prune
// --keep-used-within`, `--dry-run` and the jobs that publish all go through it, and apply.ts
// carries a plan out without deciding anything again; a dry run prints the plan and stops there.
import path from 'node:path';
import { ConfigError, UsageError, type ConfigIssue, type OstError } from '../core/errors.js';
import { unresolvedRequires } from '../core/rpmdeps.js';
import { nvr, planRetention, type KeepRule, type UsedWithin } from '../plan/retention.js';
import { POOL, type PackageEntry, type SnapshotRecord } from '../repository/snapshot.js';

/** A package offered to publish that the served snapshot does not list: its header, and where the file is. */
export interface IncomingPackage extends PackageEntry {
  /** The file to publish (in the store, or in another repository's snapshot). */
  source: string;
}

/** What the planner reads: the repository as it is served, and what is offered. */
export interface PlanInputs {
  repo: string;
  /** The served snapshot's index; none before the first publish. */
  served?: SnapshotRecord;
  /** Offered packages the served snapshot does not list, each file once, in the order given. */
  incoming: IncomingPackage[];
}

export interface PlanOptions {
  /** Retention: keep this many newest builds of every top-level package (and what they require). */
  keep?: number;
  /** With `keep`: packages to keep besides (another set's, a build a pipeline still works with). */
  pin?: (p: PackageEntry) => boolean;
  /** With `keep`: the "used" rule, the usage record as read (under the repository lock). */
  used?: UsedWithin;
  /** Fingerprints of the signing key, primary first; none: the new snapshot is unsigned. */
  fingerprints?: string[];
  /** Publishing unsigned into a signed repository is meant (otherwise refused). */
  unsigned?: boolean;
}

/** Why nothing may be published, in the order publish has always checked them. */
export interface Refusal {
  kind: 'signed-repository' | 'short-name-conflict' | 'unresolved-requires';
  message: string;
  /** Per package (the file it comes from), for the two kinds that are about packages. */
  issues: ConfigIssue[];
}

export interface KeptBuild {
  file: string;
  nvr: string;
  /** Every rule that keeps it; "required" only when no direct rule does. */
  rules: KeepRule[];
}

export interface RemovedBuild {
  file: string;
  nvr: string;
  /** With the "used" rule: its last download and counts, when the usage record knows it. */
  downloads?: number;
  lastDownloaded?: string;
  partial?: number;
}

export interface RetentionPlan {
  keep: number;
  /** The window of the "used" rule, in days (retention by use). */
  usedWithinDays?: number;
  /** Every package retention keeps, in the order of the snapshot, with the rules that keep it. */
  kept: KeptBuild[];
  removed: RemovedBuild[];
}

export interface ClosurePlan {
  /** Packages the new snapshot would list. */
  packages: number;
  /** Requires no package of the new snapshot provides (then the plan is refused). */
  unresolved: { file: string; nvr: string; require: string }[];
}

export interface SigningPlan {
  /** The fingerprint that signs the new snapshot (packages and repomd.xml); none: unsigned. */
  key?: string;
  /** All fingerprints of that key (an rpm signature names a subkey's id). */
  fingerprints: string[];
  /** Every package signed by this publish (on a copy), in the snapshot's order. */
  sign: string[];
  /** Of those, the ones the served snapshot lists already (first signed publish, a new key). */
  resign: string[];
  /** The signer of the served snapshot, when the new one is unsigned (`--unsigned`). */
  drops?: string;
}

export interface PublishPlan {
  schema: 1;
  repo: string;
  /** The snapshot served while planning. */
  served?: { stamp: string; previous?: string; signedBy?: string; packages: number };
  /** Packages the served snapshot does not list, and where each comes from. */
  incoming: { file: string; nvr: string; source: string }[];
  /** Non-empty: nothing may be published (publish fails with the first, bad input, exit 2). */
  refusals: Refusal[];
  /** Only with `keep`. */
  retention?: RetentionPlan;
  closure: ClosurePlan;
  signing: SigningPlan;
  /** The new snapshot's index, in order: the served packages kept, then the incoming ones (sizes and signers as before signing). */
  snapshot: PackageEntry[];
  changes: {
    /** False: the served snapshot stays (a publish then only brings the layout up to date). */
    changed: boolean;
    /** Why a new snapshot, in words. */
    why: string[];
    added: string[];
    removed: string[];
    resigned: string[];
  };
}

/** The set a package belongs to, from its `ost-images-layer(<set>/<layer>)` Provides. */
export function setOf(h: { provides: string[] }): string | undefined {
  for (const p of h.provides) {
    const m = /^ost-images-(?:layer|flat)\(([^/]+)\//.exec(p);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Short names (`ost-images-engine-installed`) are what test machines install by; if two sets in
 * one repository provided the same one, which image a machine gets would depend on dnf's choice.
 */
export function unqualifiedConflicts(headers: { file: string; header: { name: string; provides: string[] } }[]): ConfigIssue[] {
  const claims = new Map<string, Map<string, string>>();
  for (const { file, header } of headers) {
    const set = setOf(header);
    if (!set) continue;
    for (const p of header.provides) {
      const name = p.split(' ')[0]!;
      if (name === header.name || /^ost-images-(layer|flat|key)\(/.test(name) || name === 'installonlypkg(vm)') continue;
      const bySet = claims.get(name) ?? new Map<string, string>();
      if (!bySet.has(set)) bySet.set(set, file);
      claims.set(name, bySet);
    }
  }
  const issues: ConfigIssue[] = [];
  for (const [name, bySet] of claims) {
    if (bySet.size > 1) {
      const sets = [...bySet.entries()].map(([s, f]) => `${s} (${path.basename(f)})`);
      issues.push({ file: [...bySet.values()][0]!, path: 'Provides', message: `'${name}' is provided by more than one set: ${sets.join(', ')}; mark only one set 'package.default: true' per repository` });
    }
  }
  return issues;
}

/**
 * An unsigned snapshot replacing a signed one would be refused by every client with
 * repo_gpgcheck=1. Its own function: publish checks it before it reads any package header.
 */
export function signingRefusal(repo: string, served: SnapshotRecord | undefined, fingerprints: string[], unsigned: boolean | undefined): Refusal | undefined {
  if (!served?.signedBy || fingerprints.length > 0 || unsigned) return undefined;
  return {
    kind: 'signed-repository',
    message: `repository ${repo} is signed (key ${served.signedBy}); an unsigned snapshot would be refused by every client with repo_gpgcheck=1: pass --sign-key, or --unsigned to stop signing deliberately`,
    issues: [],
  };
}

/** The error a refused plan fails with: bad input (exit 2), nothing written. */
export function refusalError(r: Refusal): OstError {
  return r.kind === 'signed-repository' ? new UsageError(r.message) : new ConfigError(r.issues, r.message);
}

export function planPublish(inputs: PlanInputs, opts: PlanOptions = {}): PublishPlan {
  const { repo, served: prev, incoming } = inputs;
  const fprs = opts.fingerprints ?? [];
  const fpr = fprs[0];
  const sourceOf = new Map<PackageEntry, string>(incoming.map((p) => [p, p.source]));
  const fileOf = (p: PackageEntry) => sourceOf.get(p) ?? path.join(repo, POOL, p.file);
  const candidates: PackageEntry[] = [...(prev?.packages ?? []), ...incoming];
  const refusals: Refusal[] = [];
  const signing = signingRefusal(repo, prev, fprs, opts.unsigned);
  if (signing) refusals.push(signing);

  const conflicts = unqualifiedConflicts(candidates.map((p) => ({ file: fileOf(p), header: p })));
  if (conflicts.length > 0) refusals.push({ kind: 'short-name-conflict', message: `refusing to publish into ${repo}`, issues: conflicts });

  let final = candidates;
  let retention: RetentionPlan | undefined;
  if (opts.keep !== undefined) {
    const pin = opts.pin;
    const d = planRetention(candidates, opts.keep, pin ? [...incoming, ...candidates.filter((p) => pin(p))] : incoming, opts.used);
    final = d.keep;
    const offered = new Set<PackageEntry>(incoming);
    // planRetention calls every pin 'pinned'; what is being published is pinned for that reason.
    const rulesOf = (p: PackageEntry): KeepRule[] => d.rules.get(p)!.map((r) => (r.rule === 'pinned' && offered.has(p) ? { rule: 'pinned', reason: 'being published' } : r));
    retention = {
      keep: opts.keep,
      usedWithinDays: opts.used?.withinDays,
      kept: d.keep.map((p) => ({ file: p.file, nvr: nvr(p), rules: rulesOf(p) })),
      removed: d.remove.map((p) => ({ file: p.file, nvr: nvr(p), ...opts.used?.usage.get(nvr(p)) })),
    };
  }

  const unresolved = unresolvedRequires(final);
  if (unresolved.length > 0) {
    refusals.push({
      kind: 'unresolved-requires',
      message: `refusing to publish into ${repo}: unresolved dependencies (nothing was changed)`,
      issues: unresolved.map(({ pkg, require }) => ({ file: fileOf(pkg), path: 'Requires', message: `'${require}' of ${nvr(pkg)} is provided by no package of the new snapshot` })),
    });
  }

  const toSign = fpr ? final.filter((p) => p.signedBy !== fpr) : [];
  const resign = toSign.filter((p) => !sourceOf.has(p));
  const removed = retention ? retention.removed.map((r) => r.file) : [];
  const drops = prev?.signedBy && !fpr ? prev.signedBy : undefined;
  const why = [
    !prev && 'the first snapshot',
    incoming.length > 0 && `${incoming.length} new package(s)`,
    removed.length > 0 && `${removed.length} removed by retention`,
    toSign.length > 0 && `${toSign.length} package(s) to sign with ${fpr}`,
    drops && `stops signing (the served snapshot is signed by ${drops})`,
  ].filter((w): w is string => !!w);

  return {
    schema: 1,
    repo,
    served: prev && { stamp: prev.stamp, previous: prev.previous, signedBy: prev.signedBy, packages: prev.packages.length },
    incoming: incoming.map((p) => ({ file: p.file, nvr: nvr(p), source: p.source })),
    refusals,
    retention,
    closure: { packages: final.length, unresolved: unresolved.map(({ pkg, require }) => ({ file: pkg.file, nvr: nvr(pkg), require })) },
    signing: { key: fpr, fingerprints: fprs, sign: toSign.map((p) => p.file), resign: resign.map((p) => p.file), drops },
    // The index entries as the snapshot records them: an incoming package's source is not one.
    snapshot: final.map((p) => (sourceOf.has(p) ? withoutSource(p as IncomingPackage) : p)),
    changes: { changed: why.length > 0, why, added: incoming.map((p) => p.file), removed, resigned: resign.map((p) => p.file) },
  };
}

function withoutSource(p: IncomingPackage): PackageEntry {
  const { source: _source, ...entry } = p;
  return entry;
}
