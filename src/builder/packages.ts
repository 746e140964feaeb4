// What a layer changed, in packages: the guest's installed-package list after the layer's steps,
// and its difference from the parent's list. Both are written beside the image, ship inside the
// layer's RPM, and appear in the nightly report; `ost-images diff` prints them.
import { compareEvr } from '../core/rpmdeps.js';
import type { Step } from '../definitions/types.js';
import type { PackageDiff } from '../records/package-diff.js';

/** name -> version ("1:2.3-4" for rpm, dpkg's version string for Debian). */
export type PackageList = Map<string, string>;


/** Parses "name version" lines (as the guest's dpkg-query / rpm -qa print them). */
export function parsePackageList(text: string): PackageList {
  const list: PackageList = new Map();
  for (const line of text.split('\n')) {
    const [name, version] = line.trim().split(/\s+/);
    if (name && version) list.set(name, version);
  }
  return list;
}

export function formatPackageList(list: PackageList): string {
  return [...list.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([n, v]) => `${n} ${v}\n`)
    .join('');
}

/** Strips rpm's "0:" epoch so lists read the way users write versions. */
const shown = (v: string) => v.replace(/^0:/, '');

/**
 * Differences between a parent's list and a layer's. Versions are ordered with rpm's algorithm,
 * which agrees with dpkg's on the versions distributions use (epochs, `~`, dotted numbers); a
 * version change either way is reported, only its direction could differ in exotic cases.
 */
export function diffPackages(parent: PackageList | undefined, list: PackageList, steps: Step[], parentLabel?: string): PackageDiff {
  const before = parent ?? new Map<string, string>();
  const diff: PackageDiff = { schema: 1, parent: parentLabel, added: [], removed: [], upgraded: [], downgraded: [], unchanged: 0 };
  for (const [name, version] of list) {
    const old = before.get(name);
    if (old === undefined) diff.added.push({ name, version: shown(version) });
    else if (old === version) diff.unchanged++;
    else (compareEvr(version, old) >= 0 ? diff.upgraded : diff.downgraded).push({ name, from: shown(old), to: shown(version) });
  }
  for (const [name, version] of before) if (!list.has(name)) diff.removed.push({ name, version: shown(version) });
  for (const l of [diff.added, diff.removed, diff.upgraded, diff.downgraded]) l.sort((a, b) => (a.name < b.name ? -1 : 1));
  const packageSteps = steps.filter((s) => s.kind === 'install' || s.kind === 'upgrade' || s.kind === 'install-local');
  if (parent && packageSteps.length > 0 && diff.added.length + diff.removed.length + diff.upgraded.length + diff.downgraded.length === 0) {
    diff.flagged = `the layer's ${packageSteps.map((s) => `${s.kind} (step ${s.index + 1})`).join(', ')} changed no package`;
  }
  return diff;
}

export function diffSummary(d: PackageDiff): string {
  const parts = [`${d.added.length} added`, `${d.upgraded.length} upgraded`, `${d.removed.length} removed`];
  if (d.downgraded.length) parts.push(`${d.downgraded.length} downgraded`);
  return parts.join(', ') + (d.flagged ? ` (FLAGGED: ${d.flagged})` : '');
}

/** The diff as people read it: one package per line, +added, -removed, ~changed. */
export function renderDiff(d: PackageDiff): string {
  const lines = [`packages: ${diffSummary(d)}${d.parent ? `, against ${d.parent}` : ''}`];
  for (const p of d.added) lines.push(`+ ${p.name} ${p.version}`);
  for (const p of d.upgraded) lines.push(`~ ${p.name} ${p.from} -> ${p.to}`);
  for (const p of d.downgraded) lines.push(`~ ${p.name} ${p.from} -> ${p.to} (downgrade)`);
  for (const p of d.removed) lines.push(`- ${p.name} ${p.version}`);
  return `${lines.join('\n')}\n`;
}
