// A Scope owns resources that outlive a crash if nobody releases them (mounts, loop devices,
// daemons, temporary files). Each acquisition registers its release right away; close() releases
// in reverse order on every exit path and keeps going past failures so one stuck umount does not
// leak the loop device and daemon beneath it.
import { log } from './log.js';

export class Scope {
  private readonly stack: { what: string; release: () => Promise<void> }[] = [];

  defer(what: string, release: () => Promise<void> | void): void {
    this.stack.push({ what, release: async () => release() });
  }

  async close(): Promise<void> {
    let first: unknown;
    while (this.stack.length > 0) {
      const { what, release } = this.stack.pop()!;
      try {
        log.debug(`release: ${what}`);
        await release();
      } catch (err) {
        log.error(`could not release ${what}: ${(err as Error).message}`);
        first ??= err;
      }
    }
    if (first) throw first;
  }
}

export async function withScope<T>(fn: (scope: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope();
  let failed = false;
  try {
    return await fn(scope);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    try {
      await scope.close();
    } catch (releaseErr) {
      // The original failure is the one worth reporting; a release failure on top of it is logged.
      if (!failed) throw releaseErr;
    }
  }
}
