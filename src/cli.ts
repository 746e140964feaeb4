// The command line, as wiring: the program, its global options and help, the command groups
// (one module each under commands/), and one top-level catch that maps errors to fixed exit
// codes; stack traces only with --debug. Human progress goes to stderr, --json results to stdout.
//
// Start-up: `--help`, or a build that reuses every layer, should cost little more than starting
// Node. So a command module holds its commands' definitions (options, descriptions, help) and
// imports what does the work inside the action, when the command runs; only the group of the
// command asked for is registered (every group for the program's own help, for `help` alone and
// for an unknown command, the `ci` group then without its generators); and the process gateway
// loads execa and got at their first use. Before a command's action runs, the host programs it
// needs are checked (commands/tools.ts): every missing one is named at once, exit 2.
import { Command } from 'commander';
import { EXIT_FAILED, OstError, UsageError } from './core/errors.js';
import { installSignalHandlers } from './core/interrupt.js';
import { configureLog, isDebug, log, writeStderr } from './core/log.js';
import { announceTestHooks } from './input/test-hooks.js';
import { layerSet } from './commands/common.js';
import { COMMAND_TOOLS } from './commands/tools.js';
import { checkTools } from './tools/requirements.js';
import { addDocsToHelp } from './commands/docs.js';

/**
 * The order `ost-images --help` lists commands in: the data flow, then inspection, then the jobs
 * that run several stages. Groups register module by module; this keeps the listing as it was.
 * Commands not named here are listed after these, in the order they were registered.
 */
const HELP_ORDER = ['validate', 'schema', 'plan', 'build', 'package', 'publish', 'prune', 'mirror', 'usage', 'install', 'verify', 'test-boot', 'manifest', 'diff', 'cache', 'all', 'nightly', 'ci', 'promote', 'remove-old', 'doctor'];

function orderForHelp(program: Command): void {
  const rank = (c: Command) => {
    const i = HELP_ORDER.indexOf(c.name());
    return i < 0 ? HELP_ORDER.length : i;
  };
  // Array.prototype.sort is stable: unnamed commands keep their registration order.
  (program.commands as Command[]).sort((a, b) => rank(a) - rank(b));
}

type Register = (program: Command, o: { listing: boolean }) => unknown;

/**
 * The command groups: a module under commands/ each, exporting register<Group>, and the top-level
 * commands it registers (a new group is one more line here; its commands go in HELP_ORDER if
 * they should not come last, and in commands/tools.ts).
 */
export const GROUPS: { commands: string[]; load: () => Promise<Register> }[] = [
  { commands: ['validate', 'schema', 'plan', 'manifest', 'diff'], load: async () => (await import('./commands/define.js')).registerDefine },
  { commands: ['build', 'package', 'all'], load: async () => (await import('./commands/build.js')).registerBuild },
  { commands: ['publish', 'prune', 'nightly', 'promote'], load: async () => (await import('./commands/publish.js')).registerPublish },
  { commands: ['mirror'], load: async () => (await import('./commands/mirror.js')).registerMirror }, // push the served snapshot to mirrors
  { commands: ['usage'], load: async () => (await import('./commands/usage.js')).registerUsage }, // access logs -> usage.json, for prune --keep-used-within
  { commands: ['install', 'verify', 'test-boot', 'remove-old'], load: async () => (await import('./commands/consume.js')).registerConsume },
  { commands: ['cache'], load: async () => (await import('./commands/cache.js')).registerCache }, // cache ls, cache gc
  { commands: ['images'], load: async () => (await import('./commands/images.js')).registerImages },
  { commands: ['vm'], load: async () => (await import('./commands/vm.js')).registerVm }, // vm create, ls, ssh, console, stop, start, rm
  { commands: ['ci'], load: async () => (await import('./commands/ci.js')).registerCi }, // ci gitlab, ci github, and the jobs' commands
  { commands: ['doctor'], load: async () => (await import('./commands/doctor.js')).registerDoctor }, // the host programs every command runs
];

/**
 * The top-level command `argv` asks for (`help X` asks for X), or undefined for the program's own
 * help. The program's options (--debug, --quiet, --help) take no value, so the first word that is
 * not an option is the command.
 */
export function commandAskedFor(argv: string[]): string | undefined {
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/** A command's path below the program, as commands/tools.ts names it: `build`, `vm create`. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * The program with the group of the command `argv` asks for, or every group (for the list of
 * commands) when it asks for none or an unknown one. Without `argv`, every group in full.
 */
export async function buildProgram(argv?: string[]): Promise<Command> {
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
    .hook('preAction', async (cmd, action) => {
      const o = cmd.opts<{ debug?: boolean; quiet?: boolean }>();
      configureLog({ debug: o.debug, quiet: o.quiet });
      // Before any work: every program the command needs with these options, on this set.
      const name = commandPath(action);
      const opts = action.opts();
      await checkTools(name, COMMAND_TOOLS[name] ?? [], opts, process.env, () => layerSet(opts as { layersDir: string; set: string }));
    });

  const asked = argv === undefined ? undefined : commandAskedFor(argv);
  const group = GROUPS.find((g) => asked !== undefined && g.commands.includes(asked));
  const listing = argv !== undefined && group === undefined;
  for (const g of group ? [group] : GROUPS) await (await g.load())(program, { listing });
  addDocsToHelp(program); // each command's --help ends naming its page under docs/ (commands/docs.ts)

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
    const program = await buildProgram(argv);
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
