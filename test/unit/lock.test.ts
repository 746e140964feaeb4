// Who may break a lock, as a table: only a lock taken on this machine whose process is gone, or one
// from an earlier boot on a file system no other machine sees. Never another host's.
import { describe, expect, it } from 'vitest';
import { judgeOwner, type LockOwner } from '../../src/core/lock.js';

const me: LockOwner = { pid: 100, bootId: 'boot-A', host: 'runner-1', pidns: 'pid:[1]' };
const alive = (pid: number) => pid === 42;

describe('judgeOwner', () => {
  it.each<[string, Partial<LockOwner>, boolean, 'alive' | 'dead' | 'foreign']>([
    ['this machine, process running', { pid: 42 }, false, 'alive'],
    ['this machine, process gone', { pid: 43 }, false, 'dead'],
    ['this machine on a shared file system, process gone', { pid: 43 }, true, 'dead'],
    ['this machine on a shared file system, process running', { pid: 42 }, true, 'alive'],
    ['another host on a shared file system, its pid unknown here', { pid: 43, host: 'runner-2', bootId: 'boot-B' }, true, 'foreign'],
    ['another host whose pid happens to run here', { pid: 42, host: 'runner-2', bootId: 'boot-B' }, true, 'foreign'],
    ['another host with the same boot id (a container of this kernel)', { pid: 43, host: 'runner-2' }, true, 'foreign'],
    ['another pid namespace of this kernel and host name', { pid: 43, pidns: 'pid:[2]' }, false, 'foreign'],
    ['this host before a reboot, local file system', { pid: 42, bootId: 'boot-old' }, false, 'dead'],
    ['this host before a reboot, shared file system', { pid: 42, bootId: 'boot-old' }, true, 'foreign'],
    ['another host on a local file system (this machine exports it over NFS)', { pid: 43, host: 'runner-2', bootId: 'boot-B' }, false, 'foreign'],
    ['an older version\'s lock (no host), this boot, process gone', { pid: 43, host: undefined, pidns: undefined }, false, 'dead'],
    ['an older version\'s lock (no host), another boot, shared file system', { pid: 43, host: undefined, pidns: undefined, bootId: 'boot-B' }, true, 'foreign'],
  ])('%s', (_what, o, shared, verdict) => {
    const owner: LockOwner = { ...me, ...o };
    expect(judgeOwner(owner, me, { shared, alive })).toBe(verdict);
  });
});
