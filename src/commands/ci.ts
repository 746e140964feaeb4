// `ost-images ci`: the nightly on CI runners. `ci gitlab` and `ci github` generate the pipeline
// (GitLab CI) or workflow (GitHub Actions) from layers/ and the site settings, write it, print it
// or check a committed copy for drift; the job commands the pipeline runs attach to the same group
// (commands/ci-jobs.ts). The generators' options name the built-in settings, which come with the
// YAML renderers: they are loaded only when a `ci` command runs or shows its help, not for the
// program's own listing (see cli.ts, "Start-up").
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { DEFAULT_LAYERS_DIR } from '../core/paths.js';
import type { CiOverrides, Engine } from '../ci/settings.js';
import { checkOutputFile, writeOutputFile } from '../input/paths.js';
import { registerCiJobs } from './ci-jobs.js';

type Settings = typeof import('../ci/settings.js');
type Generate = typeof import('../ci/generate.js');

/** The site overrides as commander names them (`--runner-tag` repeated), plus what picks the output. */
interface GenerateCli extends Omit<CiOverrides, 'runnerTags' | 'mirrors'> {
  set?: string[];
  layersDir: string;
  out?: string;
  check?: string;
  config?: string;
  runnerTag?: string[];
  mirror?: string[];
}

/**
 * The options that shape the output, in a fixed order (not the order typed), for the generated
 * file's header: the same inputs give the same bytes.
 */
function shapingArgs(o: GenerateCli): string[] {
  const args: string[] = [];
  for (const s of [...new Set(o.set ?? [])].sort()) args.push('--set', s);
  if (o.layersDir !== DEFAULT_LAYERS_DIR) args.push('--layers-dir', o.layersDir);
  if (o.config !== undefined) args.push('--config', o.config);
  const single: [keyof GenerateCli, string][] = [
    ['cli', '--cli'],
    ['setup', '--setup'],
    ['stagingDir', '--staging-dir'],
    ['stagingUrl', '--staging-url'],
    ['repoDir', '--repo-dir'],
    ['repoUrl', '--repo-url'],
    ['signKey', '--sign-key'],
    ['keep', '--keep'],
    ['keepUsedWithin', '--keep-used-within'],
    ['upload', '--upload'],
  ];
  for (const [k, flag] of single) if (o[k] !== undefined) args.push(flag, o[k] as string);
  // In the order given: it is the order the promotion pushes them in.
  for (const m of o.mirror ?? []) args.push('--mirror', m);
  for (const t of o.runnerTag ?? []) args.push('--runner-tag', t);
  if (o.schedule !== undefined) args.push('--schedule', o.schedule);
  return args;
}

function overrides(o: GenerateCli): CiOverrides {
  return {
    cli: o.cli,
    setup: o.setup,
    stagingDir: o.stagingDir,
    stagingUrl: o.stagingUrl,
    repoDir: o.repoDir,
    repoUrl: o.repoUrl,
    signKey: o.signKey,
    keep: o.keep,
    keepUsedWithin: o.keepUsedWithin,
    mirrors: o.mirror,
    upload: o.upload,
    runnerTags: o.runnerTag,
    schedule: o.schedule,
  };
}

function generator(ci: Command, engine: Engine, { DEFAULT_CI_SETTINGS, CONFIG_FILE }: Settings, { DEFAULT_FILE, checkGenerated, generatePipeline, staleError, writeGenerated }: Generate): void {
  const d = DEFAULT_CI_SETTINGS;
  const what = engine === 'gitlab' ? 'GitLab CI pipeline' : 'GitHub Actions workflow';
  const c = ci
    .command(engine)
    .description(`write the nightly as a ${what} (${DEFAULT_FILE[engine]}): a job per layer needing its parent's, boot tests, a gated promotion per set`)
    .option('-s, --set <name...>', 'layer sets to include (repeatable; default: every set in the layers directory)')
    .option('--layers-dir <dir>', 'where layer sets are defined', DEFAULT_LAYERS_DIR)
    .option('-o, --out <file>', 'write it to this file (atomically) instead of stdout')
    .option('--check <file>', 'compare this committed file with what would be generated: exit 0 when equal, 1 with a diff when stale, 2 when missing')
    .option('--config <file>', `site settings file (default: ${CONFIG_FILE} at the repository root, when there is one)`)
    .option('--cli <command>', `how jobs run ost-images [OST_IMAGES; default ${d.cli}]`)
    .option('--setup <command>', `what every job runs first on its runner, '' for nothing [default ${d.setup}]`)
    .option('--staging-dir <dir>', `the staging repository on a file system every runner shares [OST_IMAGES_STAGING; default ${d.staging.dir}]`)
    .option('--staging-url <url>', 'where runners read staging: http(s):// or file:// [OST_IMAGES_STAGING_URL; default file://<staging dir>]')
    .option('--repo-dir <dir>', `the production repository [OST_IMAGES_REPO; default ${d.repo.dir}]`)
    .option('--repo-url <url>', 'where test machines read it: http(s):// or file:// [OST_IMAGES_REPO_URL; default file://<repo dir>]')
    .option('--sign-key <name>', "name of the gpg key promotion signs with; the key itself comes from the CI's secret store [OST_IMAGES_SIGN_KEY; default none]")
    .option('--keep <n>', `builds of every top layer retention keeps [OST_IMAGES_KEEP; default ${d.keep}]`)
    .option('--keep-used-within <days>', 'retention in production also keeps every build downloaded within DAYS days [OST_IMAGES_KEEP_USED_WITHIN; default: by count only, variable not written]')
    .option('--mirror <dest...>', 'a mirror the promotion pushes production to afterwards (repeatable, in order: an absolute directory, rsync://host[:port]/module/path or [user@]host:path) [OST_IMAGES_MIRROR; default none, variable not written]')
    .option('--upload <command>', 'command that uploads into staging, for runners without the shared file system [OST_IMAGES_UPLOAD; default none]')
    .option(
      '--runner-tag <tag...>',
      engine === 'gitlab' ? 'runner tags every job asks for (repeatable; default: none, any runner)' : `runs-on labels of every job (repeatable; default: ${d.github.runsOn.join(', ')})`,
    );
  if (engine === 'github') c.option('--schedule <cron>', `when the workflow runs, five-field cron in UTC [default '${d.github.schedule}']`);
  else c.addHelpText('after', '\nGitLab keeps a pipeline\'s schedule in the project (CI/CD > Schedules), not in .gitlab-ci.yml.');
  c.action((o: GenerateCli) => {
    if (o.check !== undefined && o.out !== undefined) throw new UsageError('--check compares a file, --out writes one: give one of them');
    const args = shapingArgs(o);
    if (o.out !== undefined) checkOutputFile('--out', o.out);
    const text = generatePipeline(engine, { layersDir: o.layersDir, sets: o.set, config: o.config, overrides: overrides(o), args });
    if (o.check !== undefined) {
      const diff = checkGenerated(o.check, text);
      if (diff) {
        process.stdout.write(diff);
        throw staleError(engine, o.check, args);
      }
      log.info(`${o.check} is current`);
    } else if (o.out !== undefined) {
      // Only a regular file, new or replaced by rename: never through a link, into a FIFO or a
      // device (`--out /dev/stdout` as root would replace the system's /dev/stdout).
      writeOutputFile('--out', o.out, (file) => writeGenerated(file, text));
      log.info(`wrote ${o.out}`);
    } else {
      process.stdout.write(text);
    }
  });
}

/**
 * The `ci` group: the generators, and the job commands (ci-jobs.ts) on the same group. `listing`:
 * only for the program's list of commands, which shows the group's name and description, so the
 * generators (and the settings and renderers their options name) are left out.
 */
export async function registerCi(program: Command, { listing = false }: { listing?: boolean } = {}): Promise<Command> {
  const ci = program
    .command('ci')
    .description('the nightly on CI runners: generate the GitLab CI pipeline or GitHub Actions workflow, and the commands its jobs run');
  if (!listing) {
    const [settings, generate] = await Promise.all([import('../ci/settings.js'), import('../ci/generate.js')]);
    generator(ci, 'gitlab', settings, generate);
    generator(ci, 'github', settings, generate);
  }
  registerCiJobs(ci);
  return ci;
}

