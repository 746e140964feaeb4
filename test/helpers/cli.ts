// Runs the built CLI (dist/) as a user would, capturing output and exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'ost-images');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  done: Promise<CliResult>;
  stderrSoFar: () => string;
  /**
   * Resolves once stderr matches `pattern` (the event a test waits for before acting on the
   * process); rejects at once if the process ends first. No deadline of its own: what a line can
   * take on a busy machine is not the test's business, and the test's timeout bounds a hang.
   */
  until: (pattern: RegExp) => Promise<void>;
}

/** CLIs started by this test file and still running. */
const running = new Set<RunningCli>();

/**
 * Stops every CLI this test file started that is still running: SIGTERM (it cleans up as on
 * Ctrl-C), SIGKILL if it has not ended 2 minutes later. For afterAll: a test that failed or timed
 * out while waiting would otherwise leave its build running, mounts and all, after the test
 * process is gone (and a CLI whose stderr reader is gone cannot even report its clean-up).
 */
export async function stopStartedClis(): Promise<void> {
  await Promise.all(
    [...running].map(async (r) => {
      r.child.kill('SIGTERM');
      const timer = setTimeout(() => r.child.kill('SIGKILL'), 120_000);
      await r.done;
      clearTimeout(timer);
    }),
  );
}

export function startCli(args: string[], env: Record<string, string> = {}): RunningCli {
  // detached: its own process group, so a test can send Ctrl-C's SIGINT to the group as a terminal does.
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  let ended = false;
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    listeners.forEach((l) => l());
  });
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => {
      ended = true;
      listeners.forEach((l) => l());
      resolve({ code, signal, stdout, stderr });
    }),
  );
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stderr)) resolve();
        else if (ended) reject(new Error(`ost-images ${args.join(' ')} ended before its output matched ${pattern}:\n${stderr}`));
        else return;
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  const handle = { child, done, stderrSoFar: () => stderr, until };
  running.add(handle);
  void done.then(() => running.delete(handle));
  return handle;
}

export function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

/**
 * Polls `cond` until it holds, for states no process announces (a file another process opened).
 * Only for conditions that stay true once reached; `timeoutMs` only bounds a hang, so make it
 * generous: it must never be what decides a test on a busy machine.
 */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
