// A lock file that survives crashes without blocking forever and is never held by two processes,
// also when the file lives on a file system several hosts share (a staging repository on NFS).
//
// Taking it: the owner (host, boot id, pid namespace, pid, a random token, the time) is written to
// a private file first and hard-linked to the lock's name. link(2) fails with EEXIST when the name
// exists, atomically, like open(O_CREAT|O_EXCL), so the lock never exists half-written; and it is
// what open(2)'s manual recommends over O_EXCL on NFS: a link whose reply was lost and retried can
// report an error although it succeeded, so the private file's link count (2: it is ours) decides,
// not the error.
//
// Breaking it: only when its owner is certainly gone. A process is certainly gone when the lock was
// taken on this machine (same host, boot id and pid namespace) and its pid no longer exists, or when
// the lock is on a local file system and was taken by this host in an earlier boot. A lock of
// another host is never broken: a pid means nothing on another machine, and that host may be
// working right now. One that is older than a generous age is reported with how to remove it by
// hand. Breaking renames the lock aside: only one of several waiters can win that rename.
// Only the owner releases.
import { linkSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError } from './errors.js';
import { checkInterrupted } from './interrupt.js';
import { log } from './log.js';
import { bootId, pidAlive } from './proc.js';

export interface LockOwner {
  pid: number;
  bootId: string;
  /** Absent in locks written before locks could be shared (those were always local). */
  host?: string;
  /** The pid namespace: containers on one kernel share its boot id, not its pids. */
  pidns?: string;
  /** Tells two takings apart even when host and pid repeat (another container, a reused pid). */
  token?: string;
  /** When it was taken (ISO time). */
  since?: string;
}

/** A lock of another host older than this is reported with how to remove it (it is never broken). */
export const REPORT_AGE_MS = 6 * 3600 * 1000;

// statfs(2) magic numbers of file systems other machines (or other kernels) may see at once:
// NFS, SMB/CIFS (SMB1, CIFS, SMB2/3), CephFS, FUSE (sshfs, GlusterFS, virtiofs, s3fs), 9p, AFS,
// OCFS2, GFS2, Lustre, GPFS. On these a lock from another boot may belong to a live process.
const SHARED_FS = new Set([0x6969, 0x517b, 0xff534d42, 0xfe534d42, 0x00c36400, 0x65735546, 0x01021997, 0x5346414f, 0x7461636f, 0x01161970, 0x0bd00bd0, 0x47504653]);

export function onSharedFileSystem(dir: string): boolean {
  try {
    return SHARED_FS.has(Number(statfsSync(dir).type));
  } catch {
    return true; // Unknown: assume the careful case.
  }
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

export function currentOwner(): LockOwner {
  return { pid: process.pid, bootId: bootId(), host: os.hostname(), pidns: pidNamespace(), token: randomBytes(8).toString('hex'), since: new Date().toISOString() };
}

type Read = { state: 'absent' } | { state: 'unreadable' } | { state: 'owned'; owner: LockOwner };

function readOwner(file: string): Read {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' };
    return { state: 'unreadable' };
  }
  try {
    const o = JSON.parse(text) as LockOwner;
    if (typeof o.pid === 'number' && typeof o.bootId === 'string') return { state: 'owned', owner: o };
  } catch {
    // Not ours, or damaged: never broken automatically.
  }
  return { state: 'unreadable' };
}

const sameTaking = (a: LockOwner, b: LockOwner): boolean => (a.token !== undefined || b.token !== undefined ? a.token === b.token : a.pid === b.pid && a.bootId === b.bootId);

/**
 * What a lock's owner is, seen from `me`: 'alive' (this machine, its process runs), 'dead' (certainly
 * gone: break it), or 'foreign' (another host or another pid namespace: nothing here can tell).
 * Pure, so the rules are tested as a table.
 */
export function judgeOwner(owner: LockOwner, me: LockOwner, o: { shared: boolean; alive: (pid: number) => boolean }): 'alive' | 'dead' | 'foreign' {
  // Locks of older versions carry neither host nor namespace: they were taken on this machine.
  const sameHost = (owner.host ?? me.host) === me.host;
  const sameMachine = sameHost && owner.bootId === me.bootId && (owner.pidns ?? me.pidns) === me.pidns;
  if (sameMachine) return o.alive(owner.pid) ? 'alive' : 'dead';
  // On a local file system a lock of this host with another boot id is from an earlier boot. Only of
  // this host: a local directory can still be shared (this machine exports it over NFS), and then
  // another host's lock appears here too.
  if (!o.shared && sameHost && owner.bootId !== me.bootId) return 'dead';
  return 'foreign';
}

function describe(owner: LockOwner | undefined): string {
  if (!owner) return 'an unreadable owner';
  return `process ${owner.pid}${owner.host ? ` on host ${owner.host}` : ''}`;
}

function ageMs(file: string, owner: LockOwner | undefined): number {
  const since = owner?.since ? Date.parse(owner.since) : NaN;
  if (Number.isFinite(since)) return Date.now() - since;
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

const hours = (ms: number): string => `${(ms / 3600_000).toFixed(1)} h`;

/** How to remove a lock nobody here may break: what a person checks first. */
function removalHint(file: string, owner: LockOwner | undefined, age: number): string {
  const where = owner?.host ? `host ${owner.host}` : 'its host';
  return `lock ${file} is held by ${describe(owner)} since ${hours(age)} ago; it is never broken automatically from another host. If ${where} has no such process any more (it crashed or rebooted), remove the lock by hand: rm ${file}`;
}

/**
 * Takes `file`, waiting while a live owner holds it. `onStale` runs when a dead owner's lock was
 * broken, to clean up what that owner left. Returns the release function.
 */
export async function acquireLock(file: string, what: string, opts: { waitMs?: number; onStale?: () => void; reportAgeMs?: number } = {}): Promise<() => void> {
  const me = currentOwner();
  const shared = onSharedFileSystem(path.dirname(file));
  // Host, pid and a random part: on a shared file system two hosts can have the same pid.
  const unique = `${me.host}.${me.pid}.${me.token}`;
  const mine = `${file}.${unique}.tmp`;
  writeFileSync(mine, JSON.stringify(me));
  const deadline = Date.now() + (opts.waitMs ?? Number.POSITIVE_INFINITY);
  const reportAge = opts.reportAgeMs ?? REPORT_AGE_MS;
  let announced = false;
  let reported = false;
  const release = () => {
    const r = readOwner(file);
    if (r.state === 'owned' && sameTaking(r.owner, me)) rmSync(file, { force: true });
  };
  try {
    for (;;) {
      try {
        linkSync(mine, file);
        return release;
      } catch (err) {
        // A retried link on NFS can fail although the first attempt made the link: ours if so.
        if (statSync(mine).nlink === 2) return release;
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const r = readOwner(file);
      if (r.state === 'absent') continue; // Released between our link and read.
      const owner = r.state === 'owned' ? r.owner : undefined;
      const verdict = owner ? judgeOwner(owner, me, { shared, alive: pidAlive }) : 'foreign';
      if (verdict !== 'dead') {
        const age = ageMs(file, owner);
        if (Date.now() >= deadline) {
          throw new StepError(`${what} is locked by ${verdict === 'alive' ? 'running ' : ''}${describe(owner)} (${file})${verdict === 'foreign' && age >= reportAge ? `; ${removalHint(file, owner, age)}` : ''}`);
        }
        if (!announced) log.info(`waiting for ${describe(owner)}, which is working on ${what} (${file})`);
        announced = true;
        if (verdict === 'foreign' && age >= reportAge && !reported) {
          log.warn(removalHint(file, owner, age));
          reported = true;
        }
        checkInterrupted();
        await sleep(500);
        continue;
      }
      const aside = `${file}.stale.${unique}`;
      try {
        renameSync(file, aside);
      } catch {
        continue; // Another waiter broke it first.
      }
      const moved = readOwner(aside);
      if (moved.state !== 'owned' || !sameTaking(moved.owner, owner!)) {
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
      log.warn(`removed the stale lock of process ${owner!.pid}, which is gone (${file})`);
      opts.onStale?.();
    }
  } finally {
    rmSync(mine, { force: true });
  }
}
