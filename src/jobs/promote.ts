// Promotion: the last job of a set's pipeline publishes into production exactly the staged builds
// the run's boot jobs passed, and nothing when any of them is missing or failed. It does not trust
// the CI engine to have skipped it after a failure (gitlab-ci-local, for one, ignores
// resource_group and does not fail a parent pipeline when a child fails): the gate records of the
// run (ci/gate.ts), one per top layer and flattened variant of the set, are the only evidence.
//
// The builds go through the ordinary publish: closure-checked, signed (staging's unsigned packages
// are signed on copies), a new snapshot switched to atomically, retention; publishers serialize on
// the repository lock. Afterwards staging is trimmed: its old builds of the set and the gate
// records of old runs go, so it does not grow without bound.
//
// Retention in production is the nightly's: --keep N, and with --keep-used-within DAYS every build
// downloaded within DAYS days (usage.json, `ost-images usage`) and what it requires is kept too.
// With mirrors (--mirror), a promotion that passed (also one with nothing new, so a mirror that
// missed a night catches up) then pushes production to each of them, after recording the run so
// the mirrors serve the same page. Production is switched by then: a failed mirror is reported in
// the result and by the exit status (1), and undoes nothing. A refused promotion touches no mirror.
import { StageRunner } from './stages.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { GateRecord } from '../records/gate.js';
import { gateFile, readGateRecord, trimGateRecords } from '../repository/gate.js';
import type { LayerSet } from '../definitions/types.js';
import { EXIT_FAILED, OstError, StepError, UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { FLAT_SUFFIX } from '../definitions/naming.js';
import { topLayers } from '../plan/plan.js';
import { nvr } from '../plan/retention.js';
import { checkPublishable, publish, setOf, type PublishOptions, type PublishResult } from '../publish/publish.js';
import { POOL, readSnapshot, servedStamp, snapshotDir, type PackageEntry } from '../repository/snapshot.js';
import type { RunRecord } from '../records/run.js';
import { firstLine } from '../repository/history.js';
import { recordRun } from '../status/status-page.js';
import { checkMirrorTool, pushToMirrors, type MirrorOutcome } from '../mirror/mirror.js';
import { readUsageRecord, staleness } from '../repository/usage.js';

export interface PromoteOptions extends Omit<PublishOptions, 'dryRun' | 'pin'> {
  run: string;
  /** Staging keeps the newest N builds of each of the set's top packages, and the records of the last N runs. */
  stagingKeep: number;
  /** With `keep`: production also keeps every build downloaded within this many days, and what it requires. */
  keepUsedWithin?: number;
  /** Mirrors production is pushed to after a passed promotion, checked (checkMirrorDestinations). */
  mirrors?: string[];
}

export interface GateCheck {
  layer: string;
  state: 'passed' | 'failed' | 'missing' | 'damaged';
  record?: GateRecord;
  /** Why it does not pass, in words for the job's log. */
  reason?: string;
}

export interface PromoteResult {
  set: string;
  run: string;
  gates: GateCheck[];
  /** NVRs the run passed, base first per chain, each once. */
  passed: string[];
  /** Of those, the ones production did not have. */
  promoted: string[];
  published: PublishResult | null;
  trimmed: { packages: string[]; runs: string[] } | null;
  /** Each mirror's outcome, in the order given (empty without mirrors, and when refused). */
  mirrors: MirrorOutcome[];
}

/** What every pipeline run of a set must have booted: each top layer and flattened variant. */
export function gateTargets(ls: LayerSet): string[] {
  return [...topLayers(ls), ...ls.set.flatten.map((l) => `${l}${FLAT_SUFFIX}`)];
}

export function checkGates(ls: LayerSet, staging: string, run: string): GateCheck[] {
  return gateTargets(ls).map((layer): GateCheck => {
    const file = gateFile(staging, ls.set.name, run, layer);
    const r = readGateRecord(file);
    if (r.state === 'missing') return { layer, state: 'missing', reason: `missing: no gate record ${file} (its boot job did not run or did not finish, e.g. because a layer job before it failed)` };
    if (r.state === 'damaged') return { layer, state: 'damaged', reason: `unreadable gate record ${file}: ${r.error}` };
    const rec = r.record;
    if (rec.set !== ls.set.name || rec.layer !== layer || rec.run !== run) return { layer, state: 'damaged', reason: `gate record ${file} is about ${rec.set} ${rec.layer} of run ${rec.run}` };
    if (!rec.ok) return { layer, state: 'failed', record: rec, reason: `FAILED: ${rec.error ?? 'boot test failed'} (booted ${rec.nvrs.join(' ')}; console tail in ${file})` };
    return { layer, state: 'passed', record: rec };
  });
}

function served(repo: string): { stamp: string; packages: PackageEntry[] } | undefined {
  const stamp = existsSync(repo) ? servedStamp(repo) : undefined;
  return stamp ? { stamp, packages: readSnapshot(repo, stamp).packages } : undefined;
}

/**
 * Promotes, and records the outcome in production's history (the status page's "recent runs"):
 * passed or refused, with what the gate records said. Bad input is not recorded.
 */
export async function promote(ls: LayerSet, staging: string, production: string, o: PromoteOptions): Promise<PromoteResult> {
  const started = new Date().toISOString();
  let gates: GateCheck[] | undefined;
  const record = (ok: boolean, extra: Partial<RunRecord>) =>
    recordRun(production, {
      kind: 'promote',
      set: ls.set.name,
      started,
      finished: new Date().toISOString(),
      ok,
      stages: [],
      run: o.run,
      gates: gates?.map((g) => ({ layer: g.layer, state: g.state })),
      ...extra,
    });
  let r: PromoteResult;
  const stages = new StageRunner<PromoteStage>('promote');
  const times = () => Object.entries(stages.seconds).map(([name, seconds]) => ({ name, seconds: seconds as number }));
  try {
    r = await promoteGated(ls, staging, production, o, stages, (g) => (gates = g));
    await record(true, {
      stages: times(),
      snapshot: r.published?.snapshot ?? (existsSync(production) ? servedStamp(production) : undefined),
      added: r.promoted.length,
    });
  } catch (err) {
    if (err instanceof OstError && err.exitCode === EXIT_FAILED) {
      await record(false, { stages: times(), failedStage: stages.blame('gate'), error: firstLine(err.message) });
    }
    throw err;
  }
  // Outside the try: whatever happens here, production is promoted and recorded as such.
  if (o.mirrors && o.mirrors.length > 0) await pushToMirrors(production, o.mirrors, r.mirrors);
  return r;
}

/**
 * The promotion's stages: the gate (every boot job's record passed), the publish into production
 * of what passed, the trimming of staging.
 */
type PromoteStage = 'gate' | 'publish' | 'trim';

async function promoteGated(ls: LayerSet, staging: string, production: string, o: PromoteOptions, stages: StageRunner<PromoteStage>, onGates: (g: GateCheck[]) => void): Promise<PromoteResult> {
  const set = ls.set.name;
  if (!existsSync(staging)) throw new UsageError(`--from: the staging repository ${staging} does not exist`);
  // A signing key missing from the keyring is bad input: refused before anything else.
  await checkPublishable(production, o);
  if (o.mirrors && o.mirrors.length > 0) await checkMirrorTool();
  const result: PromoteResult = { set, run: o.run, gates: [], passed: [], promoted: [], published: null, trimmed: null, mirrors: [] };
  await stages.run('gate', async () => {
    const gates = checkGates(ls, staging, o.run);
    onGates(gates);
    result.gates = gates;
    const bad = gates.filter((g) => g.state !== 'passed');
    if (bad.length > 0) {
      for (const g of gates) log.info(`  ${set} ${g.layer}: ${g.state === 'passed' ? `passed (${g.record!.nvrs.join(' ')})` : g.reason}`);
      throw new StepError(`promotion of set ${set}, run ${o.run}, refused; nothing was promoted, production is unchanged:\n${bad.map((g) => `  ${set} ${g.layer}: ${g.reason}`).join('\n')}`);
    }
    result.passed = [...new Set(gates.flatMap((g) => g.record!.nvrs))];
  });

  // Each build from production when it is there already, else from staging's served snapshot (its
  // hard links stay while the snapshot is kept, whatever a concurrent publish does to the pool).
  const stagingServed = served(staging);
  const productionServed = served(production);
  const inProduction = new Map((productionServed?.packages ?? []).map((p) => [nvr(p), p]));
  const inStaging = new Map((stagingServed?.packages ?? []).map((p) => [nvr(p), p]));
  const files: string[] = [];
  const missing: string[] = [];
  const entries: PackageEntry[] = [];
  for (const n of result.passed) {
    const prod = inProduction.get(n);
    if (prod) {
      entries.push(prod);
      continue;
    }
    const st = inStaging.get(n);
    if (!st) {
      missing.push(n);
      continue;
    }
    entries.push(st);
    result.promoted.push(n);
    files.push(path.join(snapshotDir(staging, stagingServed!.stamp), POOL, st.file));
  }
  if (missing.length > 0) {
    throw new StepError(`promotion of set ${set}, run ${o.run}, refused; nothing was promoted: the gate records name builds that neither staging nor production has (trimmed since?): ${missing.join(', ')}`);
  }
  if (files.length === 0) {
    log.info(`${set}: nothing new to promote: the ${result.passed.length} build(s) run ${o.run} passed are all in production already${productionServed ? ` (snapshot ${productionServed.stamp})` : ''}`);
  } else {
    log.info(`${set}: promoting ${files.length} build(s) run ${o.run} passed into ${production}: ${result.promoted.join(' ')}`);
    warnIfUsageStale(production, o);
    result.published = await stages.run('publish', () => publish(production, files, o));
  }

  // Trimming staging: housekeeping after the promotion; a failure here is a warning, not a failed job.
  try {
    result.trimmed = await stages.run('trim', () => trimStaging(ls, staging, entries, o));
  } catch (err) {
    log.warn(`${set}: promoted, but trimming staging ${staging} failed: ${(err as Error).message}`);
  }
  return result;
}

/**
 * The "used" rule of production's retention (`--keep-used-within`) is publish's, as for nightly
 * and prune: usage.json is read when retention is planned, under production's lock. Warns when the
 * record is stale, as prune does: retention by use is only as good as the logs read into it.
 */
function warnIfUsageStale(production: string, o: PromoteOptions): void {
  if (o.keepUsedWithin === undefined) return;
  const stale = staleness(readUsageRecord(production), o.keepUsedWithin, new Date());
  if (stale) log.warn(stale);
}

/**
 * Keeps in staging, of this set, the newest `stagingKeep` builds of every top package with what
 * they require, and every build newer than the one just promoted (another run may be building on
 * it right now); other sets' packages are not touched. Gate records of all but the newest runs go.
 */
async function trimStaging(ls: LayerSet, staging: string, promoted: PackageEntry[], o: PromoteOptions): Promise<{ packages: string[]; runs: string[] }> {
  const set = ls.set.name;
  let packages: string[] = [];
  if (existsSync(path.join(staging, 'repodata'))) {
    const newestPromoted = new Map<string, string>();
    for (const p of promoted) if ((newestPromoted.get(p.name) ?? '') < p.release) newestPromoted.set(p.name, p.release);
    const pin = (p: PackageEntry): boolean => {
      if (setOf(p) !== set) return true;
      const r = newestPromoted.get(p.name);
      return r === undefined || p.release > r;
    };
    // Staging is never signed: its packages are signed on their way into production.
    const r = await publish(staging, [], { keep: o.stagingKeep, pin, unsigned: true });
    packages = r.removed;
  }
  const runs = trimGateRecords(staging, set, o.stagingKeep, o.run);
  if (packages.length + runs.length > 0) log.info(`${set}: trimmed staging: ${packages.length} old package(s), gate records of ${runs.length} old run(s)${runs.length ? ` (${runs.join(', ')})` : ''}`);
  return { packages, runs };
}
