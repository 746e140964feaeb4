// A lock file that survives crashes without blocking forever and is never held by two processes.
// The owner (pid + boot id) is written to a private file first and linked into place, so the lock
// never exists half-written. A lock whose owner is gone (killed, or from before a reboot) is broken
// by renaming it aside: only one of several waiters can win that rename. Only the owner releases.
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError } from './errors.js';
import { checkInterrupted } from './interrupt.js';
import { log } from './log.js';
import { bootId, pidAlive } from './proc.js';

interface Owner {
  pid: number;
  bootId: string;
}

function readOwner(file: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

const same = (a?: Owner, b?: Owner): boolean => !!a && !!b && a.pid === b.pid && a.bootId === b.bootId;

/**
 * Takes `file`, waiting while a live owner holds it. `onStale` runs when a dead owner's lock was
 * broken, to clean up what that owner left. Returns the release function.
 */
export async function acquireLock(file: string, what: string, opts: { waitMs?: number; onStale?: () => void } = {}): Promise<() => void> {
  const me: Owner = { pid: process.pid, bootId: bootId() };
  const mine = `${file}.${process.pid}.tmp`;
  writeFileSync(mine, JSON.stringify(me));
  const deadline = Date.now() + (opts.waitMs ?? Number.POSITIVE_INFINITY);
  let announced = false;
  try {
    for (;;) {
      try {
        linkSync(mine, file);
        return () => {
          if (same(readOwner(file), me)) rmSync(file, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = readOwner(file);
      if (!owner) continue; // Released between our link and read.
      if (owner.bootId === me.bootId && pidAlive(owner.pid)) {
        if (Date.now() >= deadline) throw new StepError(`${what} is locked by running process ${owner.pid} (${file})`);
        if (!announced) log.info(`waiting for process ${owner.pid}, which is working on ${what} (${file})`);
        announced = true;
        checkInterrupted();
        await sleep(500);
        continue;
      }
      const aside = `${file}.stale.${process.pid}`;
      try {
        renameSync(file, aside);
      } catch {
        continue; // Another waiter broke it first.
      }
      if (!same(readOwner(aside), owner)) {
        // Between our read and our rename a new owner took the lock: give it back.
        try {
          linkSync(aside, file);
        } catch {
          // Yet another owner holds it now; ours was stale anyway.
        }
        rmSync(aside, { force: true });
        continue;
      }
      rmSync(aside, { force: true });
      log.warn(`removed the stale lock of process ${owner.pid}, which is gone (${file})`);
      opts.onStale?.();
    }
  } finally {
    rmSync(mine, { force: true });
  }
}
