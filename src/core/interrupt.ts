// SIGINT/SIGTERM do not kill the process outright: they abort the running external command and let
// the error unwind through every Scope, so mounts, loop devices and daemons are released on the way
// out. The top-level catch then exits 130.
import { InterruptedError } from './errors.js';
import { log } from './log.js';

const controller = new AbortController();
let installed = false;

export const abortSignal: AbortSignal = controller.signal;

export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  // Whoever read our output may be gone (a killed CI runner, a closed terminal, `| head`). A write
  // to that closed pipe fails with EPIPE as an 'error' event; unhandled, it would end the process
  // at once and skip every clean-up on the way out. Output nobody reads is dropped; the work and
  // its clean-up go on.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (controller.signal.aborted) {
        log.warn(`${sig} again: still releasing resources, please wait`);
        return;
      }
      log.warn(`${sig} received: stopping and cleaning up`);
      controller.abort(new InterruptedError(sig));
    });
  }
}

/** Throws the InterruptedError if an interrupt arrived; call between steps. */
export function checkInterrupted(): void {
  if (controller.signal.aborted) throw controller.signal.reason as Error;
}
