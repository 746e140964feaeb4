// The only module that starts processes. Callers hand it an argv array (never a shell string), it
// runs the program with a small explicit environment and stdin closed, logs the exact command under
// --debug, and turns every failure into one ToolError (exit code or signal, plus the tail of the
// output) or ToolMissingError (what the program is for and how to install it). It also answers,
// without starting anything, where a program is on the PATH it runs programs with, and which
// programs this process has run (the build manifest records the versions of those).
//
// execa is loaded on the first run, not with this module: loading it takes about 0.15 s of CPU, a
// quarter of a command that runs nothing (a build that reuses every layer). Once it is loaded, a
// child is spawned synchronously within the call to run(), before run() returns its promise
// (publish relies on that to stop createrepo_c mid-run in its fault tests); only the first run
// of a process waits for the import.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { ToolError, ToolMissingError, InterruptedError } from '../core/errors.js';
import { abortSignal } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { ALL_TOOLS, type ToolName } from './registry.js';

type Execa = (typeof import('execa'))['execa'];
let execaLoaded: Execa | undefined;

async function loadExeca(): Promise<Execa> {
  execaLoaded ??= (await import('execa')).execa;
  return execaLoaded;
}

/** Every program this process has started (found or not), in the order first asked for. */
const started = new Set<ToolName>();

/** The programs this process has run so far: a build manifest records the versions of these. */
export function toolsRun(): ReadonlySet<ToolName> {
  return started;
}

export interface RunOptions {
  cwd?: string;
  /** Added to the base environment (PATH, HOME, LANG, TMPDIR). */
  env?: Record<string, string>;
  input?: string;
  /** Teardown commands still run after an interrupt; everything else is cancelled by it. */
  cleanup?: boolean;
  timeoutMs?: number;
  /** Receives each output line as it arrives (progress, console scanning). */
  onLine?: (line: string) => void;
  /** Return the result of a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /**
   * The program talks to the user directly (`vm ssh`): our stdin, stdout and stderr, in our process
   * group so the terminal's job control and Ctrl-C reach it. Nothing is captured.
   */
  interactive?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const TAIL_LINES = 40;

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
  };
  if (process.env.TMPDIR) env.TMPDIR = process.env.TMPDIR;
  // Make sure sbin directories are searched even for a user whose PATH lacks them.
  for (const dir of ['/usr/sbin', '/sbin']) if (!env.PATH.split(':').includes(dir)) env.PATH += `:${dir}`;
  return env;
}

export function missingToolMessage(tool: ToolName): string {
  const info = ALL_TOOLS[tool];
  return (
    `${tool} is not installed; it is needed for ${info.why}. ` +
    `Install it with 'apt-get install ${info.debian}' (Debian/Ubuntu) or 'dnf install ${info.fedora}' (Fedora/EL), ` +
    `or run scripts/install-deps.`
  );
}

function tail(text: string): string {
  return text.split('\n').slice(-TAIL_LINES).join('\n');
}

function start(execa: Execa, tool: ToolName, args: string[], opts: RunOptions): ResultPromise {
  started.add(tool);
  log.debug(`run: ${[tool, ...args].map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  if (opts.interactive) {
    return execa(tool, args, { cwd: opts.cwd, env: { ...baseEnv(), ...opts.env }, extendEnv: false, stdio: 'inherit', reject: false }) as ResultPromise;
  }
  return execa(tool, args, {
    cwd: opts.cwd,
    env: { ...baseEnv(), ...opts.env },
    extendEnv: false,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
    all: true,
    reject: false,
    // Its own process group, killed as a whole on interrupt or timeout: killing only the direct
    // child (a shell in a chroot) leaves its children holding our output pipes, and the run
    // would never end.
    detached: true,
    maxBuffer: 256 * 1024 * 1024,
    lines: false,
  }) as ResultPromise;
}

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  const kill = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      // The group is gone.
    }
  };
  kill('SIGTERM');
  setTimeout(() => kill('SIGKILL'), 5000).unref();
}

export async function run(tool: ToolName, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (!opts.cleanup && abortSignal.aborted) throw abortSignal.reason as Error;
  const execa = execaLoaded ?? (await loadExeca());
  if (!opts.cleanup && abortSignal.aborted) throw abortSignal.reason as Error;
  const child = start(execa, tool, args, opts);
  let timedOut = false;
  // An interactive child shares our process group: signal it alone.
  const stop = (): void => (opts.interactive ? void child.kill('SIGTERM') : killGroup(child.pid));
  const onAbort = (): void => stop();
  if (!opts.cleanup) abortSignal.addEventListener('abort', onAbort, { once: true });
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        stop();
      }, opts.timeoutMs)
    : undefined;
  if (opts.onLine) {
    let partial = '';
    child.all?.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) opts.onLine!(line);
    });
  }
  let result;
  try {
    result = await child;
  } finally {
    abortSignal.removeEventListener('abort', onAbort);
    if (timer) clearTimeout(timer);
  }
  const all = typeof result.all === 'string' ? result.all : '';
  const stdout = typeof result.stdout === 'string' ? result.stdout : '';
  const stderr = typeof result.stderr === 'string' ? result.stderr : '';
  if (result.failed) {
    const code = (result as { code?: string }).code;
    if (code === 'ENOENT') throw new ToolMissingError(missingToolMessage(tool));
    // A Ctrl-C reaches the whole process group: the child may die of SIGINT before execa cancels
    // it. Either way the run was interrupted, not failed.
    if (!opts.cleanup && abortSignal.aborted) throw abortSignal.reason as InterruptedError;
    if (timedOut) {
      throw new ToolError(tool, args, { signal: `timeout after ${opts.timeoutMs} ms` }, tail(all));
    }
    if (result.exitCode !== undefined && opts.allowFailure) {
      return { stdout, stderr, exitCode: result.exitCode };
    }
    throw new ToolError(tool, args, { exitCode: result.exitCode, signal: result.signal ?? undefined }, tail(all));
  }
  return { stdout, stderr, exitCode: 0 };
}

/**
 * Starts a long-running process (a VM on a serial console) and hands back the child for the caller
 * to watch and stop; an interrupt kills it. Still the only door to execa. The child comes wrapped:
 * it is a promise of its own result, which an async function returning it bare would wait for.
 */
export async function spawnLong(tool: ToolName, args: string[], opts: RunOptions = {}): Promise<{ child: ResultPromise }> {
  const execa = execaLoaded ?? (await loadExeca());
  if (abortSignal.aborted) throw abortSignal.reason as Error;
  const child = start(execa, tool, args, opts);
  const onAbort = (): void => killGroup(child.pid);
  abortSignal.addEventListener('abort', onAbort, { once: true });
  child.finally(() => abortSignal.removeEventListener('abort', onAbort)).catch(() => undefined);
  return { child };
}

/**
 * Where run() would find the program: the first executable regular file of that name in the
 * directories of its PATH (the caller's, with /usr/sbin and /sbin added), as `command -v` finds
 * it; undefined when there is none. Looked up in this process: nothing is started.
 */
export function findTool(tool: string, searchPath: string = baseEnv().PATH): string | undefined {
  for (const dir of searchPath.split(':')) {
    // An empty entry is the current directory, for a shell; run() passes PATH on unchanged.
    const file = path.resolve(dir || '.', tool);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not there, or not executable: the next directory.
    }
  }
  return undefined;
}

/** True when the program can be found on PATH. */
export async function haveTool(tool: ToolName): Promise<boolean> {
  return findTool(tool) !== undefined;
}

/** The PATH run() starts programs with (the caller's, with /usr/sbin and /sbin added). */
export function toolSearchPath(): string {
  return baseEnv().PATH;
}

/** The first line `<tool> --version` prints, or null when the tool is missing or says nothing. */
export async function versionOf(tool: ToolName): Promise<string | null> {
  try {
    const r = await run(tool, ['--version'], { allowFailure: true, timeoutMs: 30_000 });
    if (r.exitCode !== 0) return null;
    return (r.stdout || r.stderr).split('\n').find((l) => l.trim())?.trim() || null;
  } catch {
    return null;
  }
}
