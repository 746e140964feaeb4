// The lock on real files: another host's lock is never broken, however dead its pid looks here,
// and an old one is reported with how to remove it by hand; a lock of this machine whose process
// is gone is taken over.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock, currentOwner } from '../../src/core/lock.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('lock');
afterAll(() => removeTree(tmp));

/** A pid no process has: above the kernel's maximum. */
const DEAD_PID = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;

describe('acquireLock', () => {
  it("refuses to break another host's lock, even when its pid is not running here", async () => {
    const file = path.join(tmp, 'foreign.lock');
    const lock = JSON.stringify({ pid: DEAD_PID, bootId: 'another-boot', host: 'another-runner', since: new Date().toISOString() });
    writeFileSync(file, lock);
    await expect(acquireLock(file, 'repository X', { waitMs: 0 })).rejects.toThrow(`repository X is locked by process ${DEAD_PID} on host another-runner (${file})`);
    expect(readFileSync(file, 'utf8')).toBe(lock);
  });

  it('reports an old lock of another host with how to remove it, and still does not break it', async () => {
    const file = path.join(tmp, 'old.lock');
    const since = new Date(Date.now() - 2 * 24 * 3600 * 1000).toISOString();
    const lock = JSON.stringify({ pid: DEAD_PID, bootId: 'another-boot', host: 'another-runner', since });
    writeFileSync(file, lock);
    const err = await acquireLock(file, 'repository X', { waitMs: 0 }).catch((e: Error) => e);
    expect((err as Error).message).toContain('it is never broken automatically from another host');
    expect((err as Error).message).toContain(`If host another-runner has no such process any more (it crashed or rebooted), remove the lock by hand: rm ${file}`);
    expect(readFileSync(file, 'utf8')).toBe(lock);
  });

  it('an unreadable lock is not broken either', async () => {
    const file = path.join(tmp, 'garbage.lock');
    writeFileSync(file, 'not json');
    await expect(acquireLock(file, 'repository X', { waitMs: 0 })).rejects.toThrow('is locked by an unreadable owner');
    expect(readFileSync(file, 'utf8')).toBe('not json');
  });

  it("takes over a lock of this machine whose process is gone, and records its host", async () => {
    const file = path.join(tmp, 'stale.lock');
    writeFileSync(file, JSON.stringify({ ...currentOwner(), pid: DEAD_PID, token: 'dead' }));
    const release = await acquireLock(file, 'repository X', { waitMs: 0 });
    const owner = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; host: string };
    expect(owner).toMatchObject({ pid: process.pid, host: os.hostname() });
    release();
    expect(existsSync(file)).toBe(false);
  });

  it('leaves no private file behind', async () => {
    const release = await acquireLock(path.join(tmp, 'clean.lock'), 'x');
    release();
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(tmp).filter((f) => f.startsWith('clean.lock'))).toEqual([]);
  });
});
