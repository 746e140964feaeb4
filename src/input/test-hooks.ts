// Hooks for tests, and only for tests: a test sets one of these variables to stop or kill an
// ost-images process at an exact point, so that it can show what a kill or a reader in the middle
// of that point sees, by events rather than by timing. Documented in docs/development.md ("Test hooks").
//
//   OST_IMAGES_FAULT=<point>        the process SIGKILLs itself at <point> (publish:after-switch,
//                                   mirror:during-data, ...); some points first stop (SIGSTOP)
//                                   the child working there, so it is still mid-work afterwards
//   OST_IMAGES_MIRROR_HOLD=1        `mirror` stops before each phase (and after the last), says
//                                   `mirror-hold <point> <destination>` and goes on at SIGUSR2
//   OST_IMAGES_HOLD_SECONDS=<n>     how long a hold waits for its SIGUSR2 (default 600): past it
//                                   the run fails (exit 1) saying so; a hold never waits forever
//
// Every hook says on stderr that it is active when the process starts, and again when it acts: a
// log that shows a kill or a stop also shows that a test asked for it.
import { existsSync, watch } from 'node:fs';
import path from 'node:path';
import { StepError } from '../core/errors.js';
import { abortSignal, checkInterrupted } from '../core/interrupt.js';
import { writeStderr } from '../core/log.js';
import { parseNumber } from './numbers.js';

const HOLD_DEFAULT_SECONDS = 600;

/** Says which hooks are set, once, at the start of the CLI (cli.ts). */
export function announceTestHooks(env: NodeJS.ProcessEnv = process.env): void {
  if (env.OST_IMAGES_FAULT) writeStderr(`test hook: OST_IMAGES_FAULT=${env.OST_IMAGES_FAULT}: this process kills itself at that point (for tests only)\n`);
  if (env.OST_IMAGES_MIRROR_HOLD === '1') writeStderr(`test hook: OST_IMAGES_MIRROR_HOLD=1: a mirror stops before each phase until SIGUSR2, at most ${holdSeconds(env)} s each (for tests only)\n`);
}

function holdSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.OST_IMAGES_HOLD_SECONDS;
  return v === undefined || v === '' ? HOLD_DEFAULT_SECONDS : parseNumber('OST_IMAGES_HOLD_SECONDS', v, { what: 'a positive whole number of seconds', whole: true, min: 1, max: 86400 });
}

/** Whether OST_IMAGES_FAULT names this point; when it does, says so (the hook is about to act). */
export function faultAt(point: string): boolean {
  if (process.env.OST_IMAGES_FAULT !== point) return false;
  writeStderr(`test hook: OST_IMAGES_FAULT=${point}: reached\n`);
  return true;
}

/** Kills the process (SIGKILL: no clean-up, as a power cut) when OST_IMAGES_FAULT names this point. */
export function faultPoint(point: string): void {
  if (faultAt(point)) killSelf();
}

export function killSelf(): void {
  process.kill(process.pid, 'SIGKILL');
}

/** Stops (SIGSTOP) the given processes, so that they are still mid-work whenever the next run looks. */
export function stopProcesses(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      // Exited meanwhile.
    }
  }
}

/**
 * With OST_IMAGES_MIRROR_HOLD=1: says `<what>` on stderr and waits for SIGUSR2, an interrupt
 * (which the caller then sees through checkInterrupted), or the hold's bound, past which it fails
 * loudly (StepError, exit 1) instead of waiting forever for a test that is gone.
 */
export async function holdPoint(what: string): Promise<void> {
  if (process.env.OST_IMAGES_MIRROR_HOLD !== '1') return;
  const seconds = holdSeconds();
  // A signal listener does not keep Node's event loop alive; the timer does (and bounds the hold).
  let timer: NodeJS.Timeout | undefined;
  let onSignal: (() => void) | undefined;
  let onAbort: (() => void) | undefined;
  const outcome = new Promise<'resumed' | 'interrupted' | 'timeout'>((resolve) => {
    onSignal = () => resolve('resumed');
    onAbort = () => resolve('interrupted');
    process.once('SIGUSR2', onSignal);
    abortSignal.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => resolve('timeout'), seconds * 1000);
  });
  writeStderr(`${what}\n`);
  const how = abortSignal.aborted ? 'interrupted' : await outcome;
  clearTimeout(timer);
  process.removeListener('SIGUSR2', onSignal!);
  abortSignal.removeEventListener('abort', onAbort!);
  checkInterrupted();
  if (how === 'timeout') throw new StepError(`test hook OST_IMAGES_MIRROR_HOLD: no SIGUSR2 within ${seconds} s at '${what}' (OST_IMAGES_HOLD_SECONDS); giving up`);
}

/**
 * Resolves once `cond()` holds, checked at every change inside `dir` (inotify through fs.watch)
 * rather than by polling: a file being written announces itself. While `dir` does not exist yet,
 * its parent is watched for it. Rejects after `seconds` (the hook then fails loudly).
 */
export async function whenInDir(dir: string, cond: () => boolean, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  if (!existsSync(dir)) await whenInDir(path.dirname(dir), () => existsSync(dir) || cond(), seconds);
  await new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve();
    };
    const watcher = watch(dir, () => {
      if (cond()) finish();
    });
    watcher.on('error', (err) => finish(err));
    const timer = setTimeout(() => finish(new Error(`nothing in ${dir} made the condition true within ${seconds} s`)), Math.max(0, deadline - Date.now()));
    // What happened before the watch began.
    if (cond()) finish();
  });
}
