// `prune --keep N --keep-used-within DAYS`: retention that also keeps every build downloaded within
// DAYS days (the repository's usage record) and everything it requires, with the rule that keeps
// each build.
import { log } from '../core/log.js';
import { nvr, planRetention, type KeepRule } from '../plan/retention.js';
import { readSnapshot } from '../repository/snapshot.js';
import { prune, type PublishOptions, type PublishResult } from './publish.js';
import { readUsageRecord, usedWithin, usedPin, staleness } from '../repository/usage.js';

export interface KeptBuild {
  file: string;
  nvr: string;
  /** Every rule that keeps it; "required" only when no direct rule does. */
  rules: KeepRule[];
}

export interface UsagePruneResult extends PublishResult {
  keepUsedWithinDays: number;
  /** Which rule keeps what, for the snapshot retention started from. */
  kept: KeptBuild[];
  removedBuilds: { file: string; nvr: string; lastDownloaded?: string; downloads?: number }[];
}

/** `prune --keep N --keep-used-within DAYS`: retention that also keeps what is still downloaded. */
export async function pruneByUse(repo: string, keep: number, days: number, opts: Omit<PublishOptions, 'keep' | 'pin'>, now: Date): Promise<UsagePruneResult> {
  const stale = staleness(readUsageRecord(repo), days, now);
  if (stale) log.warn(stale);
  const p = usedPin(repo, days, now);
  const result = await prune(repo, keep, { ...opts, pin: p.pin });
  // Explained against the snapshot retention started from (kept as the one the new one replaced)
  // and the usage record it read, so the explanation is the decision, not a second guess.
  const from = result.changed && !result.dryRun ? result.previous : result.snapshot;
  const packages = from ? readSnapshot(repo, from).packages : [];
  const used = p.used() ?? usedWithin(repo, days, now);
  const d = planRetention(packages, keep, [], used);
  const kept = d.keep.map((q) => ({ file: q.file, nvr: nvr(q), rules: d.rules.get(q)! }));
  const removedBuilds = d.remove.map((q) => ({ file: q.file, nvr: nvr(q), ...used.usage.get(nvr(q)) }));
  const planned = new Set(d.remove.map((q) => q.file));
  if (planned.size !== result.removed.length || result.removed.some((f) => !planned.has(f))) {
    log.warn(`the explanation of what was kept may not match what was removed (${result.removed.join(', ')}): the repository changed meanwhile`);
  }
  return { ...result, keepUsedWithinDays: days, kept, removedBuilds };
}
