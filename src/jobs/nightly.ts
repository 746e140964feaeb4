// The nightly job, as one gate: refresh upstream digests, plan, build what changed, package,
// boot-test every top layer, and publish only when every step passed. Whatever happens it writes
// a report (JSON for machines, text for people); on failure nothing is published and the
// repository keeps serving yesterday's snapshot.
//
// With --reproduce LAYER..., after the boot tests those layers' builds are checked by rebuilding
// them from their recorded inputs (reproduce/rebuild.ts): the outcome goes into the report and the
// repository's history (the status page), and does not gate the publish: a build that a rebuild
// does not reproduce still booted and passed, and is no worse than yesterday's.
//
// With mirrors (--mirror), a run that published (or found nothing new: a mirror that missed last
// night catches up) then pushes the repository to each of them. That comes after the switch, so a
// mirror that fails cannot undo or hide the publish: production stays published, the report says
// so beside each mirror's outcome, and the run fails at stage 'mirror' (exit 1). A run that failed
// before publishing touches no mirror.
import { mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { imageOf, type BuildResult } from '../builder/build.js';
import { testBoot } from '../consume/test-boot.js';
import type { LayerSet } from '../definitions/types.js';
import { OstError, EXIT_FAILED, EXIT_INTERRUPTED } from '../core/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../core/fsutil.js';
import { type BackendName } from '../tools/host.js';
import { log } from '../core/log.js';
import { packageLayers } from '../package/package.js';
import { releaseStamp, vr } from '../records/build.js';
import { FLAT_SUFFIX, flatImageFileName, packageName } from '../definitions/naming.js';
import { planBuild, topLayers, type PlanEntry } from '../plan/plan.js';
import { resolveUpstream } from '../plan/upstream.js';
import { checkPublishable, publish, type PublishOptions, type PublishResult } from '../publish/publish.js';
import type { PackagesInfo } from '../records/build.js';
import type { Store } from '../store/store.js';
import { manifestPath, writeManifest } from '../store/manifest.js';
import type { RunRecord } from '../records/run.js';
import { firstLine } from '../repository/history.js';
import { recordRun } from '../status/status-page.js';
import { checkMirrorTool, describeOutcome, pushToMirrors, type MirrorOutcome } from '../mirror/mirror.js';
import { describeVerdict, verifyRebuild, type ReproStatus, type ReproVerdict } from './reproduce.js';
import { buildSequence } from './sequence.js';
import { StageRunner } from './stages.js';

export interface NightlyOptions extends Omit<PublishOptions, 'dryRun'> {
  repo: string;
  backend: 'auto' | BackendName;
  offline?: boolean;
  bootTimeoutSec: number;
  /** Directory for the report files. */
  reportDir: string;
  /** Mirrors pushed to after a publish, checked (checkMirrorDestinations); none when empty. */
  mirrors: string[];
  /** Layers whose builds are checked by a rebuild (see the top of this file); none when empty. */
  reproduce?: string[];
}

/** What the report and the history keep of a rebuild check. */
export interface ReproduceReport {
  layer: string;
  build?: string;
  status: ReproStatus;
  reason?: string;
  /** Paths that differ (known differences apart), and the first of them. */
  differing: number;
  paths: string[];
  /** Differences the layer declares known. */
  known: number;
  seconds: number;
}

export interface LayerReport {
  layer: string;
  parent?: string;
  key: string;
  action: 'built' | 'reused' | 'fetched';
  /** Why it was (re)built or not, and what changed in its inputs. */
  reason: string;
  changes: string[];
  package: string;
  versionRelease: string;
  image: string;
  imageBytes: number;
  buildSeconds: number;
  rpm?: string;
  rpmBytes?: number;
  /** Installed packages and what changed against the parent (files beside the image and in the RPM). */
  packages?: PackagesInfo;
  /** The flattened variant's package, for layers the set flattens. */
  flat?: { rpm: string; rpmBytes: number };
}

export interface BootReport {
  layer: string;
  image: string;
  ok: boolean;
  seconds: number;
  sshSeconds?: number;
  error?: string;
  consoleLog?: string;
}

export type Stage = 'upstream' | 'plan' | 'build' | 'package' | 'boot' | 'reproduce' | 'publish' | 'mirror';

export interface NightlyReport {
  schema: 1;
  set: string;
  started: string;
  finished: string;
  ok: boolean;
  failed?: { stage: Stage; error: string; exitCode: number };
  backend?: BackendName;
  upstream: Record<string, string>;
  /** When each upstream's metadata says it was published (seconds): the layers' SOURCE_DATE_EPOCH comes from these. */
  upstreamDates?: Record<string, number>;
  layers: LayerReport[];
  boots: BootReport[];
  /** Rebuild checks (--reproduce), in the order asked; empty without it. */
  reproduced?: ReproduceReport[];
  /** What was published; null when the gate kept the repository as it was. */
  published: PublishResult | null;
  /**
   * Each mirror's outcome, in the order given; empty without --mirror and when nothing was
   * published (no mirror is touched then). A failed one makes the run fail at stage 'mirror' while
   * `published` still says what production serves.
   */
  mirrors: MirrorOutcome[];
  stages: Partial<Record<Stage, number>>;
  /** The set's build manifest (written after packaging). */
  manifest?: string;
  files?: { json: string; text: string };
}

const mib = (n?: number) => (n === undefined ? '-' : `${(n / 1024 ** 2).toFixed(0)} MiB`);

/** The reason, with the keys of the inputs that changed (their old and new values are in the JSON). */
const why = (l: LayerReport) => (l.changes.length > 0 ? `${l.reason}: ${l.changes.map((c) => c.split(':')[0]).join(', ')}` : l.reason);

export function renderReport(r: NightlyReport): string {
  const lines = [
    `ost-images nightly, set ${r.set}: ${r.ok ? 'PASSED' : `FAILED at ${r.failed!.stage}`} (${r.started} .. ${r.finished})`,
  ];
  if (r.failed) lines.push(`  error: ${r.failed.error.split('\n')[0]}`);
  lines.push(
    r.published
      ? `  published: snapshot ${r.published.snapshot} of ${r.published.repo}: ${r.published.added.length} new, ${r.published.removed.length} removed, ${r.published.resigned.length ? `${r.published.resigned.length} re-signed, ` : ''}${r.published.packages} in all, ${r.published.signedBy ? `signed by ${r.published.signedBy}` : 'unsigned'}${r.published.changed ? '' : ' (nothing new)'}`
      : '  published: nothing (the repository still serves its previous snapshot)',
  );
  for (const m of r.mirrors) lines.push(`  ${describeOutcome(m)}`);
  if (r.layers.length > 0) {
    const rows = [['layer', 'action', 'version-release', 'image', 'rpm', 'seconds', 'why'], ...r.layers.map((l) => [l.layer, l.action, l.versionRelease, mib(l.imageBytes), mib(l.rpmBytes), l.buildSeconds.toFixed(0), why(l)])];
    const width = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    for (const row of rows) lines.push(`  ${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(width[i]!))).join('  ')}`);
  }
  for (const l of r.layers) {
    if (l.action !== 'built' || !l.packages) continue;
    const p = l.packages;
    lines.push(`  packages ${l.layer}: ${p.count} installed; ${p.added} added, ${p.upgraded} upgraded, ${p.removed} removed${p.downgraded ? `, ${p.downgraded} downgraded` : ''}${p.flagged ? ` -- FLAGGED: ${p.flagged}` : ''} (ost-images diff ${l.layer})`);
  }
  for (const b of r.boots) {
    lines.push(`  boot ${b.layer}: ${b.ok ? `ok in ${b.seconds.toFixed(0)} s${b.sshSeconds ? `, SSH login after ${b.sshSeconds.toFixed(0)} s` : ''}` : `FAILED: ${b.error?.split('\n')[0]}`}`);
  }
  for (const x of r.reproduced ?? []) {
    const what = x.status === 'identical' ? 'IDENTICAL' : x.status === 'different' ? `DIFFERENT: ${x.reason}` : `not checked: ${x.reason}`;
    lines.push(`  reproduce ${x.layer}${x.build ? ` ${x.build}` : ''}: ${what}${x.known ? ` (${x.known} known to differ)` : ''} in ${x.seconds.toFixed(0)} s`);
    for (const p of x.paths.slice(0, 10)) lines.push(`    ${p}`);
  }
  lines.push(`  stages: ${Object.entries(r.stages).map(([k, v]) => `${k} ${v!.toFixed(1)} s`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}


export async function nightly(ls: LayerSet, store: Store, o: NightlyOptions): Promise<NightlyReport> {
  const report: NightlyReport = { schema: 1, set: ls.set.name, started: new Date().toISOString(), finished: '', ok: false, upstream: {}, layers: [], boots: [], reproduced: [], published: null, mirrors: [], stages: {} };
  const stages = new StageRunner<Stage>('nightly');
  try {
    // Bad publish options, and a missing rsync for the mirrors, fail now, not after the build.
    await stages.run('upstream', async () => {
      await checkPublishable(o.repo, o);
      if (o.mirrors.length > 0) await checkMirrorTool();
    });
    const upstream = await stages.run('upstream', () => resolveUpstream(ls, store.root, { offline: o.offline }));
    report.upstream = upstream.digests;
    report.upstreamDates = upstream.dates;
    const makePlan = (k: string | undefined) => planBuild(ls, [], new Map(ls.order.map((l) => [l, store.current(ls.set.name, l)])), { upstream, rootKey: k });
    // Everything after the build happens under the set's lock too: what is booted and published is
    // what this run built and packaged.
    await buildSequence(ls, store, { makePlan, backend: o.backend, flatten: true, stages }, async (b) => {
      report.backend = b.builtAny ? b.backend : undefined;
      for (const built of b.layers) report.layers.push(layerReport(ls, store, b.plan.entries, built));
      const packaged = await stages.run('package', async () => {
        const r = await packageLayers(ls, ls.order, store);
        report.manifest = manifestPath(store, ls.set.name);
        await writeManifest(ls, store);
        return r;
      });
      for (const p of packaged) {
        const flat = p.layer.endsWith(FLAT_SUFFIX);
        const l = report.layers.find((x) => x.layer === (flat ? p.layer.slice(0, -FLAT_SUFFIX.length) : p.layer));
        if (!l) continue;
        if (flat) l.flat = { rpm: path.basename(p.rpm), rpmBytes: p.bytes };
        else {
          l.rpm = path.basename(p.rpm);
          l.rpmBytes = p.bytes;
        }
      }
      await stages.run('boot', () => bootStage(ls, store, o, report));
      if (o.reproduce && o.reproduce.length > 0) await stages.run('reproduce', () => reproduceStage(ls, store, o, report));
      report.published = await stages.run('publish', () => publish(o.repo, packaged.map((p) => p.rpm), o));
      report.ok = true;
    });
  } catch (err) {
    // Errors between stages (bookkeeping after one finished) belong to the stage that ran last.
    const stage = stages.blame('upstream');
    report.failed = {
      stage,
      error: err instanceof Error ? err.message : String(err),
      exitCode: err instanceof OstError ? err.exitCode : EXIT_FAILED,
    };
    log.error(`nightly: ${stage} failed; nothing was published: ${report.failed.error.split('\n')[0]}`);
  } finally {
    report.stages = stages.seconds;
    report.finished = new Date().toISOString();
  }
  // Every run goes into the repository's history, passed or failed, so the status page shows the
  // nights that published nothing. Not bad input (nothing is written then) nor an interrupted run.
  if (report.ok || report.failed?.exitCode === EXIT_FAILED) await recordRun(o.repo, historyRecord(report));
  // After the history too: the mirrors get the page that shows this run, as the source serves it.
  // The history keeps what the repository did (it published); a mirror's outcome is the report's.
  if (report.ok && o.mirrors.length > 0) await mirrorStage(report, o);
  return report;
}

/** What the report says of one layer: its key, what was done and why, its build and package. */
function layerReport(ls: LayerSet, store: Store, entries: PlanEntry[], b: BuildResult): LayerReport {
  const e = entries.find((x) => x.layer === b.layer)!;
  return {
    layer: b.layer,
    parent: e.parent,
    key: e.key,
    action: b.action,
    reason: e.reason,
    changes: e.changes,
    package: packageName(ls.set, b.layer),
    versionRelease: vr(b.record),
    image: b.record.image,
    imageBytes: statSync(imageOf(store, b.record)).size,
    buildSeconds: b.seconds,
    packages: b.record.packages,
  };
}

/**
 * Boots every top layer and every flattened variant, even when one fails, so the report says which
 * ones work; fails the stage when any did not boot. A failed boot's console log is kept.
 */
async function bootStage(ls: LayerSet, store: Store, o: NightlyOptions, report: NightlyReport): Promise<void> {
  const targets = [
    ...topLayers(ls).map((layer) => ({ layer, image: imageOf(store, store.current(ls.set.name, layer)!) })),
    ...ls.set.flatten.map((layer) => ({ layer: `${layer}${FLAT_SUFFIX}`, image: store.imagePath(ls.set.name, flatImageFileName(ls.set.name, layer, store.current(ls.set.name, layer)!)) })),
  ];
  for (const { layer, image } of targets) {
    const consoleLog = path.join(o.reportDir, `console-${layer}-${releaseStamp(new Date(report.started))}.log`);
    try {
      const b = await testBoot(image, { timeoutSec: o.bootTimeoutSec, consoleLog, ssh: true });
      report.boots.push({ layer, image, ok: true, seconds: b.seconds, sshSeconds: b.sshSeconds });
      rmSync(consoleLog, { force: true }); // Kept only when a boot fails.
    } catch (err) {
      if (!(err instanceof OstError) || err.exitCode === 130) throw err;
      report.boots.push({ layer, image, ok: false, seconds: 0, error: err.message, consoleLog });
    }
  }
  const bad = report.boots.filter((b) => !b.ok);
  if (bad.length > 0) throw new BootFailed(`${bad.map((b) => b.layer).join(', ')} did not boot`);
}

/**
 * Checks the asked layers' builds by rebuilding them; each outcome is recorded, none fails the run
 * (an interrupt does). A rebuild that fails outright is "not checked", with its error.
 */
async function reproduceStage(ls: LayerSet, store: Store, o: NightlyOptions, report: NightlyReport): Promise<void> {
  for (const layer of o.reproduce ?? []) {
    const t0 = Date.now();
    let v: ReproVerdict;
    try {
      [v] = (await verifyRebuild(ls, store, { layers: [layer], backend: o.backend, offline: o.offline })) as [ReproVerdict];
    } catch (err) {
      if (err instanceof OstError && err.exitCode === EXIT_INTERRUPTED) throw err;
      v = { layer, status: 'not-checked', reason: `the rebuild failed: ${firstLine(err instanceof Error ? err.message : String(err))}`, seconds: (Date.now() - t0) / 1000 };
    }
    (report.reproduced ??= []).push({ layer, build: v.build, status: v.status, reason: v.reason, differing: v.tree?.differing ?? 0, paths: (v.tree?.paths ?? []).slice(0, 20).map((p) => `${p.path}: ${p.aspects.join(', ')}`), known: v.tree?.known.length ?? 0, seconds: v.seconds });
    for (const line of describeVerdict(v, 10)) (v.status === 'identical' ? log.info : log.warn)(`nightly: reproduce: ${line}`);
  }
}

/** Pushes the published repository to every mirror; a failure fails the run, never the publish. */
async function mirrorStage(report: NightlyReport, o: NightlyOptions): Promise<void> {
  const t0 = Date.now();
  log.info('nightly: mirror');
  const snapshot = report.published!.snapshot;
  try {
    await pushToMirrors(o.repo, o.mirrors, report.mirrors);
  } catch (err) {
    // An interrupt: the mirrors not reached yet keep what they had.
    report.ok = false;
    report.failed = { stage: 'mirror', error: `${err instanceof Error ? err.message : String(err)} while pushing to the mirrors; production was published (snapshot ${snapshot}) and stays published`, exitCode: err instanceof OstError ? err.exitCode : EXIT_FAILED };
  } finally {
    report.stages.mirror = (Date.now() - t0) / 1000;
    report.finished = new Date().toISOString();
  }
  const bad = report.mirrors.filter((m) => !m.ok);
  if (report.failed || bad.length === 0) return;
  report.ok = false;
  report.failed = {
    stage: 'mirror',
    error: `${bad.length} of ${o.mirrors.length} mirror(s) failed (${bad.map((m) => m.dest).join(', ')}); production was published (snapshot ${snapshot}) and stays published\n${bad.map((m) => m.error).join('\n')}`,
    exitCode: EXIT_FAILED,
  };
  log.error(`nightly: ${report.failed.error.split('\n')[0]}`);
}

/** The run as the repository's history keeps it: result, stage times, what it published. */
export function historyRecord(r: NightlyReport): RunRecord {
  const rec: RunRecord = {
    kind: 'nightly',
    set: r.set,
    started: r.started,
    finished: r.finished,
    ok: r.ok,
    // In the order they ran (the report fills them in that order).
    stages: Object.entries(r.stages).map(([name, seconds]) => ({ name, seconds: seconds ?? 0 })),
  };
  if (r.failed) {
    rec.failedStage = r.failed.stage;
    rec.error = firstLine(r.failed.error);
  }
  if (r.published) {
    rec.snapshot = r.published.snapshot;
    rec.added = r.published.added.length;
  }
  if (r.reproduced?.length) rec.reproduced = r.reproduced.map((x) => ({ layer: x.layer, status: x.status, differing: x.differing }));
  return rec;
}

class BootFailed extends OstError {
  readonly exitCode = EXIT_FAILED;
}

/** Writes `nightly-<stamp>.json` and `.txt` into the report directory; returns their paths. */
export function writeReport(r: NightlyReport, dir: string): { json: string; text: string } {
  const base = path.join(dir, `nightly-${r.set}-${releaseStamp(new Date(r.started))}`);
  const files = { json: `${base}.json`, text: `${base}.txt` };
  mkdirSync(dir, { recursive: true });
  r.files = files;
  writeJsonAtomic(files.json, r);
  writeFileAtomic(files.text, renderReport(r));
  return files;
}
