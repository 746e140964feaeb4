// The command line, as wiring: the program, its global options and help, the command groups
// (one module each under commands/), and one top-level catch that maps errors to fixed exit
// codes; stack traces only with --debug. Human progress goes to stderr, --json results to stdout.
import { Command } from 'commander';
import { EXIT_FAILED, OstError, UsageError } from './core/errors.js';
import { installSignalHandlers } from './core/interrupt.js';
import { configureLog, isDebug, log, writeStderr } from './core/log.js';
import { announceTestHooks } from './input/test-hooks.js';
import { registerBuild } from './commands/build.js';
import { registerCache } from './commands/cache.js';
import { registerCi } from './commands/ci.js';
import { registerConsume } from './commands/consume.js';
import { registerDefine } from './commands/define.js';
import { registerImages } from './commands/images.js';
import { registerMirror } from './commands/mirror.js';
import { registerPublish } from './commands/publish.js';
import { registerUsage } from './commands/usage.js';
import { registerVm } from './commands/vm.js';
import { addDocsToHelp } from './commands/docs.js';

/**
 * The order `ost-images --help` lists commands in: the data flow, then inspection, then the jobs
 * that run several stages. Groups register module by module; this keeps the listing as it was.
 * Commands not named here are listed after these, in the order they were registered.
 */
const HELP_ORDER = ['validate', 'plan', 'build', 'package', 'publish', 'prune', 'mirror', 'usage', 'install', 'verify', 'test-boot', 'manifest', 'diff', 'cache', 'all', 'nightly', 'ci', 'promote', 'remove-old'];

function orderForHelp(program: Command): void {
  const rank = (c: Command) => {
    const i = HELP_ORDER.indexOf(c.name());
    return i < 0 ? HELP_ORDER.length : i;
  };
  // Array.prototype.sort is stable: unnamed commands keep their registration order.
  (program.commands as Command[]).sort((a, b) => rank(a) - rank(b));
}

export function buildProgram(): Command {
  const program = new Command('ost-images')
    .description('Build VM disk images in layers (qcow2 overlays) and ship every layer as an RPM in a DNF repository.')
    .option('--debug', 'log every command run and show stack traces')
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .addHelpText(
      'after',
      `
Examples:
  ost-images all                                   build, package, publish into repo/, install and boot the default set
  ost-images build --layer engine-installed        rebuild one layer on the existing builds of its parents
  ost-images build --dry-run --json                what a build would do, for machines
  ost-images test-boot --layer host-installed      boot a layer's current build and log in over SSH
  ost-images install --repo http://host/repo/ --root /tmp/r ost-images-engine-installed
  ost-images nightly --keep 3 --sign-key ci@example.org --url https://ci.example.org/ost-images/
                                                   the nightly gate: build, boot-test, publish only if all passed
  ost-images publish --rollback                    serve the previous snapshot of repo/ again
  ost-images prune --keep 2 --dry-run              what retention would remove (chains stay whole)
  ost-images remove-old --keep 1                   on a test machine: old builds no VM uses
  ost-images vm create engine --layer engine-installed
                                                   on a test machine: a VM on the installed build, through libvirt

Exit codes: 0 success, 1 a step failed, 2 bad input (nothing written), 130 interrupted.
Layer sets live in layers/<set>/ (set.yaml, <layer>/layer.yaml); see docs/layer-sets.md.
Documentation: README.md and a page per topic under docs/; each command's --help names its page.`,
    )
    .hook('preAction', (cmd) => {
      const o = cmd.opts<{ debug?: boolean; quiet?: boolean }>();
      configureLog({ debug: o.debug, quiet: o.quiet });
    });

  // The command groups. A new group is one module under commands/ exporting register<Group>,
  // called here (and its commands named in HELP_ORDER if they should not come last).
  registerDefine(program); //  validate, plan, manifest, diff
  registerBuild(program); //   build, package, all
  registerPublish(program); // publish, prune, nightly
  registerMirror(program); //  mirror (push the served snapshot to mirrors)
  registerUsage(program); //   usage (access logs -> usage.json, for prune --keep-used-within)
  registerConsume(program); // install, verify, test-boot, remove-old
  registerCache(program); //   cache ls, cache gc
  registerImages(program); //  images
  registerVm(program); //      vm create, ls, ssh, console, stop, start, rm
  registerCi(program); //      ci gitlab, ci github, and the jobs' commands
  addDocsToHelp(program); //   each command's --help ends naming its page under docs/ (commands/docs.ts)

  orderForHelp(program);
  return program;
}

/** Commander exits 1 on a bad option; here every bad argument is bad input: exit 2. */
function exitCodesForArguments(cmd: Command): void {
  cmd.exitOverride((err) => {
    if (err.exitCode === 0) process.exit(0); // --help, --version
    throw new UsageError(err.message.replace(/^error: /, ''));
  });
  cmd.configureOutput({ writeErr: (s) => (/^error: /.test(s) ? undefined : writeStderr(s)) });
  cmd.commands.forEach(exitCodesForArguments);
}

/**
 * A file-system error no command turned into bad input (a path it did not expect to fail on):
 * one line naming the path and the errno, not a stack trace, which only --debug shows.
 */
function describeFsError(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException | undefined;
  if (!(e instanceof Error) || typeof e.code !== 'string' || typeof e.syscall !== 'string') return undefined;
  return `${e.syscall} ${e.path ?? ''}${(e as { dest?: string }).dest ? ` -> ${(e as { dest?: string }).dest}` : ''}: ${e.message.replace(/^[A-Z]+: /, '').replace(/, [a-z]+ '.*'$/, '')}`;
}

export async function main(argv: string[]): Promise<void> {
  installSignalHandlers();
  try {
    announceTestHooks();
    const program = buildProgram();
    exitCodesForArguments(program);
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof OstError) {
      log.error(err.message);
      if (isDebug() && err.stack) writeStderr(`${err.stack}\n`);
      process.exitCode = err.exitCode;
    } else if (describeFsError(err) !== undefined) {
      log.error(describeFsError(err)!);
      if (isDebug()) writeStderr(`${(err as Error).stack}\n`);
      process.exitCode = EXIT_FAILED;
    } else {
      log.error(`unexpected failure: ${(err as Error)?.stack ?? String(err)}`);
      process.exitCode = EXIT_FAILED;
    }
  }
}
