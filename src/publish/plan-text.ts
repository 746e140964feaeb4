// A publish plan (plan.ts) for people: what `publish --dry-run` and `prune --dry-run` print. Pure:
// the lines only, the commands write them.
import { formatIssue } from '../core/errors.js';
import { nvr } from '../plan/retention.js';
import type { PublishPlan } from './plan.js';

/** The plan, line by line: the change, then why each build stays or goes, the closure, signing. */
export function describePlan(plan: PublishPlan): string[] {
  const s = plan.served;
  const lines = [
    `plan for ${plan.repo}: ${s ? `serving snapshot ${s.stamp} (${s.packages} package(s), ${s.signedBy ? `signed by ${s.signedBy}` : 'unsigned'})` : 'nothing served yet'}`,
  ];
  for (const r of plan.refusals) {
    lines.push(`refused: ${r.message}`);
    for (const i of r.issues) lines.push(`  ${formatIssue(i)}`);
  }
  const c = plan.changes;
  lines.push(c.changed ? `a new snapshot of ${plan.snapshot.length} package(s): ${c.why.join(', ')}` : 'nothing would change: the served snapshot stays');
  // Builds by NVR, as dnf and retention name them (the JSON has the file names too).
  for (const p of plan.incoming) lines.push(`  add     ${p.nvr}`);
  const r = plan.retention;
  for (const p of r?.removed ?? []) {
    const use = r?.usedWithinDays === undefined ? '' : p.lastDownloaded ? `: last downloaded ${p.lastDownloaded}, outside ${r.usedWithinDays} days` : ': no download recorded';
    lines.push(`  remove  ${p.nvr}${use}`);
  }
  const byFile = new Map(plan.snapshot.map((p) => [p.file, nvr(p)]));
  for (const f of plan.signing.resign) lines.push(`  re-sign ${byFile.get(f) ?? f}`);
  if (r) {
    const used = r.usedWithinDays === undefined ? '' : `, every build downloaded within ${r.usedWithinDays} day(s)`;
    lines.push(`retention: keeps the ${r.keep} newest build(s) of every top-level package${used}, what is being published or pinned, and everything they require`);
    for (const k of r.kept) lines.push(`  keep    ${k.nvr}: ${k.rules.map((x) => `[${x.rule}] ${x.reason}`).join('; ')}`);
  }
  const u = plan.closure.unresolved;
  lines.push(u.length === 0 ? `closure: every Requires resolves within the ${plan.closure.packages} package(s) of the new snapshot` : `closure: ${u.length} Requires resolve to nothing`);
  for (const x of u) lines.push(`  ${x.nvr} requires '${x.require}'`);
  const g = plan.signing;
  if (g.key && g.sign.length === 0) lines.push(`signing: repomd.xml with key ${g.key} (every package is signed by it already)`);
  else if (g.key) lines.push(`signing: ${g.sign.length} package(s)${g.resign.length ? ` (${g.resign.length} of them served already: re-signed)` : ''} and repomd.xml with key ${g.key}`);
  else lines.push(g.drops ? `signing: none; the served snapshot is signed by ${g.drops}, the new one would not be (--unsigned)` : 'signing: none (unsigned)');
  return lines;
}
