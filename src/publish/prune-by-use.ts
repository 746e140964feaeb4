// `prune --keep N --keep-used-within DAYS`: retention that also keeps every build downloaded within
// DAYS days (the repository's usage record) and everything it requires, with the rule that keeps
// each build. The rules are the plan's (plan.ts): the explanation is the decision that was carried
// out (or, in a dry run, would be), not a second planning run beside it.
import { log } from '../core/log.js';
import { pruneWithPlan, type PublishOptions, type PublishResult } from './publish.js';
import type { KeptBuild, RemovedBuild } from './plan.js';
import { readUsageRecord, staleness } from '../repository/usage.js';

export type { KeptBuild } from './plan.js';

export interface UsagePruneResult extends PublishResult {
  keepUsedWithinDays: number;
  /** Which rule keeps what, for the snapshot retention started from. */
  kept: KeptBuild[];
  removedBuilds: RemovedBuild[];
}

/** `prune --keep N --keep-used-within DAYS`: retention that also keeps what is still downloaded. */
export async function pruneByUse(repo: string, keep: number, days: number, opts: Omit<PublishOptions, 'keep' | 'pin' | 'keepUsedWithin' | 'now'>, now: Date): Promise<UsagePruneResult> {
  const stale = staleness(readUsageRecord(repo), days, now);
  if (stale) log.warn(stale);
  const { plan, result } = await pruneWithPlan(repo, keep, { ...opts, keepUsedWithin: days, now });
  // Planned against the served snapshot and the usage record read under the lock.
  const retention = plan.retention!;
  return { ...result, keepUsedWithinDays: days, kept: retention.kept, removedBuilds: retention.removed };
}
