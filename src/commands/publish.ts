// Commands that write a repository: publish (and roll back), prune, nightly, the gate that
// publishes only what passed, and promote, a pipeline's gate from staging into production. What
// does the work is imported when a command runs (see cli.ts, "Start-up").
import path from 'node:path';
import { Command, Option } from 'commander';
import { EXIT_FAILED, UsageError } from '../core/errors.js';
import { servedStamp } from '../repository/snapshot.js';
import type { BackendName } from '../tools/host.js';
import { log, writeStderr } from '../core/log.js';
import { given, runId } from '../ci/locations.js';
import { DAYS, KEEP, SECONDS, parseNumber, parseOptionalNumber } from '../input/numbers.js';
import type { PublishResult } from '../publish/publish.js';
import type { PublishPlan } from '../publish/plan.js';
import { describePlan } from '../publish/plan-text.js';
import type { UsagePruneResult } from '../publish/prune-by-use.js';
import { Store } from '../store/store.js';
import { MIRROR_HELP, baseUrls, collect, emit, layerSet, mirrorsGiven, publishOpts, repeatedUrl, withCommon, withPublishing, type Common, type PublishCli } from './common.js';
import { DEFAULT_LAYERS_DIR, DEFAULT_SET } from '../core/paths.js';

function printPublish(r: PublishResult): void {
  // A dry run prints its plan: what would change, and why each build stays or goes.
  if (r.plan) return printDryRun(r.plan);
  for (const f of r.added) log.info(`  did add     ${f}`);
  for (const f of r.removed) log.info(`  did remove  ${f}`);
  for (const f of r.resigned) log.info(`  did re-sign ${f}`);
}

/** prune --keep-used-within, for people: every build with the rules that keep it, then what goes. */
function printPruneByUse(r: UsagePruneResult): void {
  if (r.plan) return printDryRun(r.plan);
  for (const k of r.kept) log.info(`  keep    ${k.nvr}: ${k.rules.map((x) => `[${x.rule}] ${x.reason}`).join('; ')}`);
  for (const b of r.removedBuilds) log.info(`  did remove  ${b.nvr}: ${b.lastDownloaded ? `last downloaded ${b.lastDownloaded}, outside ${r.keepUsedWithinDays} days` : 'no download recorded'}`);
}

/** `publish --dry-run` and `prune --dry-run` (with --keep-used-within too): the plan, nothing written. */
function printDryRun(plan: PublishPlan): void {
  log.info(`dry run on ${plan.repo}: nothing is written`);
  for (const line of describePlan(plan)) log.info(line);
}

export function registerPublish(program: Command): void {
  withPublishing(withCommon(program.command('publish')))
    .description('publish the packages of every layer of the set into a DNF repository: a new snapshot, checked, then served by one atomic switch')
    .option('--keep <n>', 'also remove old builds: keep the N newest builds of every top-level layer and every build they require')
    .option('-n, --dry-run', 'print the plan (what would be added, removed, signed; which rule keeps each build with --keep; the closure check) and write nothing; with --json the result carries it as "plan"')
    .option('--rollback', 'instead of publishing, serve again the snapshot the current one replaced')
    .action(async (o: Common & PublishCli & { keep?: string; dryRun?: boolean; rollback?: boolean }) => {
      const { publish, rollback } = await import('../publish/publish.js');
      if (o.rollback) {
        const clash = [o.keep !== undefined && '--keep', o.dryRun && '--dry-run', o.signKey && '--sign-key'].filter(Boolean);
        if (clash.length > 0) throw new UsageError(`--rollback does not go with ${clash.join(', ')}`);
        const r = await rollback(o.repo, { url: baseUrls(o.url), unsigned: o.unsigned });
        emit(o, r, () => undefined);
        return;
      }
      const opts = publishOpts(o);
      const ls = await layerSet(o);
      const { currentRpms } = await import('../package/package.js');
      const result = await publish(o.repo, currentRpms(ls, new Store(o.store)), { ...opts, dryRun: o.dryRun });
      emit(o, result, () => printPublish(result));
    });

  withPublishing(program.command('prune'))
    .description('remove old builds from a repository without ever breaking a chain: keeps the N newest builds of every top-level layer package and every build they require, transitively')
    .requiredOption('--keep <n>', 'builds to keep of every top-level layer package')
    .option('-n, --dry-run', 'print the plan (which rule keeps each build, what would be removed, the closure check) and write nothing; with --json the result carries it as "plan"')
    .option('--json', 'machine-readable result on stdout')
    .action(async (o: PublishCli & { keep: string; dryRun?: boolean; json?: boolean }) => {
      const { keep, ...opts } = publishOpts(o);
      const days = parseOptionalNumber('--keep-used-within', o.keepUsedWithin, DAYS);
      if (days !== undefined) {
        // Retention by use: the result also says which rule keeps what.
        const { pruneByUse } = await import('../publish/prune-by-use.js');
        const r = await pruneByUse(o.repo, keep!, days, { signKey: opts.signKey, unsigned: opts.unsigned, url: opts.url, dryRun: o.dryRun }, new Date());
        return emit(o, r, () => printPruneByUse(r));
      }
      const { prune } = await import('../publish/publish.js');
      const result = await prune(o.repo, keep!, { ...opts, dryRun: o.dryRun });
      emit(o, result, () => printPublish(result));
    });

  withPublishing(withCommon(program.command('nightly')))
    .description('the nightly job: refresh upstream digests, build what changed, package, boot-test every top layer and flattened variant, and publish only if all of that passed; always writes a report')
    .option('--keep <n>', 'retention applied when publishing (see prune)')
    .addOption(new Option('-b, --backend <name>', 'how layer steps run').choices(['auto', 'chroot', 'guestfs']).default('auto'))
    .option('--offline', 'use the last known upstream digests instead of fetching them')
    .option('--boot-timeout <seconds>', 'per boot (every top layer and flattened variant)', '600')
    .option('--report-dir <dir>', 'where the report (JSON and text) goes (default: <store>/reports)')
    .option('--mirror <dest>', MIRROR_HELP, collect)
    .option('--reproduce <layer...>', "after the boot tests, check these layers' builds by rebuilding them from their recorded inputs (as verify --rebuild does); the outcome goes into the report and the status page, and does not stop the publish")
    .addHelpText(
      'after',
      `
Exit status: 0 published (or nothing new) and every mirror pushed; 1 a step failed: before the
publish, nothing was published; at stage 'mirror', production WAS published and only the named
mirror(s) failed (the report's "published" and "mirrors" say so); 2 bad input, checked before
anything is built (mirror destinations too); 130 interrupted.`,
    )
    .action(async (o: Common & PublishCli & { keep?: string; backend: 'auto' | BackendName; offline?: boolean; bootTimeout: string; reportDir?: string; mirror?: string[]; reproduce?: string[] }) => {
      const bootTimeoutSec = parseNumber('--boot-timeout', o.bootTimeout, SECONDS);
      const opts = publishOpts(o);
      const [{ checkMirrorDestinations }, { requireLayer }, { nightly, renderReport, writeReport }] = await Promise.all([import('../mirror/mirror.js'), import('../plan/plan.js'), import('../jobs/nightly.js')]);
      const mirrors = checkMirrorDestinations(o.repo, mirrorsGiven(o.mirror, process.env.OST_IMAGES_MIRROR));
      const ls = await layerSet(o);
      o.reproduce?.forEach((l) => requireLayer(ls, l));
      const store = new Store(o.store);
      const reportDir = path.resolve(o.reportDir ?? path.join(store.root, 'reports'));
      const report = await nightly(ls, store, { ...opts, repo: o.repo, backend: o.backend, offline: o.offline, bootTimeoutSec, reportDir, mirrors, reproduce: o.reproduce });
      const files = writeReport(report, reportDir);
      emit(o, report, () => writeStderr(renderReport(report)));
      log.info(`report: ${files.text} (JSON: ${files.json})`);
      // Set, not thrown: the report above already says what failed.
      if (!report.ok) process.exitCode = report.failed!.exitCode;
    });

  program
    .command('promote')
    .description("a pipeline's last job for a set: publish into production exactly the staged builds the run's boot jobs passed (every top layer and flattened variant must have a passing gate record, else nothing is promoted), signed, checked, atomically; then trim staging")
    .option('-s, --set <name>', 'layer set', DEFAULT_SET)
    .option('--layers-dir <dir>', 'where layer sets are defined', DEFAULT_LAYERS_DIR)
    .option('--from <dir>', 'the staging repository [env OST_IMAGES_STAGING]')
    .option('--to <dir>', 'the production repository [env OST_IMAGES_REPO]')
    .option('--run <id>', "the pipeline run whose gate records decide [env OST_IMAGES_RUN]")
    .option('--keep <n>', 'retention in production (see prune) [env OST_IMAGES_KEEP]')
    .option('--keep-used-within <days>', 'with --keep: production also keeps every build downloaded within DAYS days (see ost-images usage) and every build it requires, as prune and nightly do [env OST_IMAGES_KEEP_USED_WITHIN]')
    .option('--sign-key <key>', 'gpg key (from GNUPGHOME) that signs the promoted packages and repomd.xml [env OST_IMAGES_SIGN_KEY]')
    .option('--unsigned', 'publish unsigned into a production repository that was signed (refused otherwise)')
    .option('--url <url>', 'base URL test machines reach production at, for ost-images.repo; repeat it for mirrors, in the order dnf is to try them [env OST_IMAGES_REPO_URL]', repeatedUrl())
    .option('--staging-keep <n>', 'staging keeps the N newest builds of each top package of the set and the gate records of the last N runs [env OST_IMAGES_STAGING_KEEP; default 2]')
    .option('--mirror <dest>', MIRROR_HELP, collect)
    .option('--json', 'machine-readable result on stdout')
    .addHelpText(
      'after',
      `
Exit status: 0 promoted (or nothing new) and every mirror pushed; 1 refused (nothing promoted,
production unchanged, no mirror touched), a publish that failed, or a mirror that failed AFTER the
promotion (production stays promoted; the result's "mirrors" and the error name the mirror);
2 bad input, checked before anything is read or written; 130 interrupted.`,
    )
    .action(async (o: { set: string; layersDir: string; from?: string; to?: string; run?: string; keep?: string; keepUsedWithin?: string; signKey?: string; unsigned?: boolean; url?: string; stagingKeep?: string; mirror?: string[]; json?: boolean }) => {
      const env = process.env;
      const from = given(o.from, env.OST_IMAGES_STAGING);
      const to = given(o.to, env.OST_IMAGES_REPO);
      if (!from) throw new UsageError('the staging repository: give --from or set OST_IMAGES_STAGING');
      if (!to) throw new UsageError('the production repository: give --to or set OST_IMAGES_REPO');
      const run = runId(given(o.run, env.OST_IMAGES_RUN));
      const keep = parseOptionalNumber(o.keep !== undefined ? '--keep' : 'OST_IMAGES_KEEP', given(o.keep, env.OST_IMAGES_KEEP), KEEP);
      const keepUsedWithin = parseOptionalNumber(o.keepUsedWithin !== undefined ? '--keep-used-within' : 'OST_IMAGES_KEEP_USED_WITHIN', given(o.keepUsedWithin, env.OST_IMAGES_KEEP_USED_WITHIN), DAYS);
      if (keepUsedWithin !== undefined && keep === undefined) throw new UsageError('--keep-used-within goes with --keep or OST_IMAGES_KEEP (it widens what retention keeps)');
      const [{ checkMirrorDestinations, describeOutcome }, { promote }] = await Promise.all([import('../mirror/mirror.js'), import('../jobs/promote.js')]);
      const mirrors = checkMirrorDestinations(to, mirrorsGiven(o.mirror, env.OST_IMAGES_MIRROR));
      const stagingKeep = parseOptionalNumber(o.stagingKeep !== undefined ? '--staging-keep' : 'OST_IMAGES_STAGING_KEEP', given(o.stagingKeep, env.OST_IMAGES_STAGING_KEEP), KEEP) ?? 2;
      const ls = await layerSet(o);
      const signKey = given(o.signKey, env.OST_IMAGES_SIGN_KEY);
      const url = baseUrls(o.url, env.OST_IMAGES_REPO_URL);
      const r = await promote(ls, path.resolve(from), path.resolve(to), { run, keep, keepUsedWithin, signKey, unsigned: o.unsigned, url, stagingKeep, mirrors });
      emit(o, r, () => r.mirrors.forEach((m) => (m.ok ? log.info(describeOutcome(m)) : undefined)));
      const bad = r.mirrors.filter((m) => !m.ok);
      if (bad.length > 0) {
        // Set, not thrown: the result above is what happened, and production stays promoted.
        const served = r.published?.snapshot ?? servedStamp(path.resolve(to));
        log.error(`${bad.length} of ${r.mirrors.length} mirror(s) failed after the promotion (${bad.map((m) => m.dest).join(', ')}); production was promoted and stays so (snapshot ${served})`);
        process.exitCode = EXIT_FAILED;
      }
    });
}
