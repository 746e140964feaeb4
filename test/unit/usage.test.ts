// `ost-images usage` against a repository's snapshot records: every request is counted once,
// whatever happens to the log files between runs (read again, grown, rotated by rename and
// compression, rotated by copytruncate, given twice), and bad input writes nothing.
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import { utcLocalTime } from '../../src/usage/access-log.js';
import { UsageError, quoteMiddle } from '../../src/core/errors.js';
import { emptyUsage, readUsage, readUsageRecord, staleness, usageFile, usedPin } from '../../src/repository/usage.js';
import { recordUsage } from '../../src/usage/usage.js';
import { publishOpts } from '../../src/commands/common.js';
import type { PackageEntry, SnapshotRecord } from '../../src/repository/snapshot.js';
import { testTmp } from '../helpers/tmp.js';

const root = testTmp('usage');
let repo: string;
let logs: string;
let n = 0;

const pkg = (name: string, release: string, size = 1000): PackageEntry => ({
  file: `ost-images-demo-${name}-12-${release}.noarch.rpm`,
  name: `ost-images-demo-${name}`,
  version: '12',
  release,
  provides: [],
  requires: [],
  size,
});
const ENGINE1 = pkg('engine-installed', '20261101000200');
const ENGINE2 = pkg('engine-installed', '20261120000200');
const nvrOf = (p: PackageEntry) => `${p.name}-${p.version}-${p.release}`;

function writeSnapshot(stamp: string, packages: PackageEntry[]): void {
  const dir = path.join(repo, '.snapshots', stamp);
  mkdirSync(path.join(dir, 'repodata'), { recursive: true });
  const rec: SnapshotRecord = { schema: 1, stamp, created: '2026-11-20T00:00:00.000Z', added: [], removed: [], packages };
  writeFileSync(path.join(dir, 'snapshot.json'), JSON.stringify(rec));
  rmSync(path.join(repo, 'repodata'), { force: true });
  symlinkSync(path.join('.snapshots', stamp, 'repodata'), path.join(repo, 'repodata'));
}

/** An nginx combined line for a download of `p` at minute `min` past 10:00 on 27 Nov. */
const get = (p: PackageEntry, min: number, client = '192.0.2.10', status = 200) =>
  `${client} - - [27/Nov/2026:10:${String(min).padStart(2, '0')}:00 +0000] "GET /ost-images/packages/${p.file} HTTP/1.1" ${status} ${p.size} "-" "libdnf (Debian GNU/Linux 12)"\n`;
const repomd = (min: number) => `192.0.2.10 - - [27/Nov/2026:10:${String(min).padStart(2, '0')}:00 +0000] "GET /ost-images/repodata/repomd.xml HTTP/1.1" 200 3000 "-" "libdnf"\n`;

const run = (...files: string[]) => recordUsage(repo, files, { localTime: utcLocalTime, now: new Date('2026-11-29T12:00:00Z') });
const downloads = () => Object.fromEntries([...readUsage(repo)].map(([k, u]) => [k, `${u.downloads}${u.partial ? `+${u.partial}p` : ''} ${u.lastDownloaded}`]));

beforeEach(() => {
  repo = path.join(root, `repo${++n}`);
  logs = path.join(root, `logs${n}`);
  mkdirSync(repo);
  mkdirSync(logs);
  writeSnapshot('20261120000300', [ENGINE1, ENGINE2]);
});

describe('usage: counting each request once', () => {
  it('no record yet: readUsage is empty', () => {
    expect(readUsage(repo).size).toBe(0);
  });

  it('reads a log; reading it again counts nothing; lines it grew by are counted', async () => {
    const log = path.join(logs, 'access.log');
    writeFileSync(log, repomd(0) + get(ENGINE1, 1) + get(ENGINE2, 2) + get(ENGINE2, 3, '2001:db8::5'));
    const r1 = await run(log);
    expect(r1.logs[0]).toMatchObject({ lines: 4, alreadyRead: 0, downloads: 3, ignored: 1, ignoredBy: { 'not a package': 1 }, malformed: 0 });
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '1 2026-11-27T10:01:00Z', [nvrOf(ENGINE2)]: '2 2026-11-27T10:03:00Z' });

    const r2 = await run(log);
    expect(r2.logs[0]).toMatchObject({ lines: 4, alreadyRead: 4, downloads: 0, ignored: 0 });
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '1 2026-11-27T10:01:00Z', [nvrOf(ENGINE2)]: '2 2026-11-27T10:03:00Z' });

    appendFileSync(log, get(ENGINE1, 7) + 'garbage\n');
    const r3 = await run(log);
    expect(r3.logs[0]).toMatchObject({ lines: 6, alreadyRead: 4, downloads: 1, malformed: 1, malformedExamples: [`${log}:6: not an access log line (client ident user [time] "request" status bytes)`] });
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '2 2026-11-27T10:07:00Z', [nvrOf(ENGINE2)]: '2 2026-11-27T10:03:00Z' });
    expect(r3.builds.map((b) => [b.nvr, b.newDownloads])).toEqual([
      [nvrOf(ENGINE1), 1],
      [nvrOf(ENGINE2), 0],
    ]);
  });

  it('a line still being written is left for the next run, then counted once', async () => {
    const log = path.join(logs, 'access.log');
    const line = get(ENGINE1, 1);
    writeFileSync(log, get(ENGINE2, 0) + line.slice(0, 40));
    expect((await run(log)).logs[0]).toMatchObject({ lines: 1, downloads: 1, malformed: 0 });
    appendFileSync(log, line.slice(40));
    expect((await run(log)).logs[0]).toMatchObject({ lines: 2, alreadyRead: 1, downloads: 1, malformed: 0 });
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '1 2026-11-27T10:01:00Z', [nvrOf(ENGINE2)]: '1 2026-11-27T10:00:00Z' });
  });

  it('logrotate by rename and compression: the rotated log resumes where it was left, the new one counts from its start', async () => {
    const log = path.join(logs, 'access.log');
    writeFileSync(log, get(ENGINE1, 1) + get(ENGINE1, 2));
    await run(log);
    // More requests, then rotation: access.log -> access.log.1 -> (compressed) access.log.1.gz,
    // and the server opens a new access.log.
    appendFileSync(log, get(ENGINE2, 3));
    renameSync(log, `${log}.1`);
    writeFileSync(`${log}.1.gz`, gzipSync(readFileSync(`${log}.1`)));
    rmSync(`${log}.1`);
    writeFileSync(log, get(ENGINE2, 4));
    const r = await run(`${log}.1.gz`, log);
    expect(r.logs.map((l) => [l.lines, l.alreadyRead, l.downloads])).toEqual([
      [3, 2, 1],
      [1, 0, 1],
    ]);
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '2 2026-11-27T10:02:00Z', [nvrOf(ENGINE2)]: '2 2026-11-27T10:04:00Z' });
    // A glob that catches every rotation, read the next day: nothing twice.
    const again = await run(log, `${log}.1.gz`);
    expect(again.logs.every((l) => l.downloads === 0 && l.alreadyRead === l.lines)).toBe(true);
  });

  it('logrotate copytruncate: the copy resumes, the truncated log starts over as a new log', async () => {
    const log = path.join(logs, 'access.log');
    writeFileSync(log, get(ENGINE1, 1));
    await run(log);
    appendFileSync(log, get(ENGINE1, 2));
    copyFileSync(log, `${log}.1`);
    truncateSync(log, 0);
    appendFileSync(log, get(ENGINE2, 5));
    // Both copies of the old log, given at once, and the new one.
    const r = await run(`${log}.1`, log, `${log}.1`);
    expect(r.logs.map((l) => l.downloads)).toEqual([1, 1, 0]);
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '2 2026-11-27T10:02:00Z', [nvrOf(ENGINE2)]: '1 2026-11-27T10:05:00Z' });
  });

  it('logs of several servers (mirrors), read in any order: counts add up, the last download is the newest', async () => {
    const a = path.join(logs, 'mirror-a.log');
    const b = path.join(logs, 'mirror-b.log');
    writeFileSync(a, get(ENGINE1, 9, '198.51.100.1'));
    writeFileSync(b, get(ENGINE1, 3, '198.51.100.2') + get(ENGINE1, 4, '198.51.100.2', 206));
    await run(a);
    await run(b);
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '2+1p 2026-11-27T10:09:00Z' });
  });

  it('two mirrors whose logs begin with the same line (a probe asking both at once) are two logs', async () => {
    const probe = repomd(0);
    const a = path.join(logs, 'mirror-a.log');
    const b = path.join(logs, 'mirror-b.log');
    writeFileSync(a, probe + get(ENGINE1, 1, '198.51.100.1'));
    writeFileSync(b, probe + get(ENGINE1, 2, '198.51.100.2'));
    const r = await run(a, b);
    expect(r.logs.map((l) => [l.alreadyRead, l.downloads])).toEqual([
      [0, 1],
      [0, 1],
    ]);
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '2 2026-11-27T10:02:00Z' });
  });

  it('a log first read short, then long, then rotated: found under its first lines each time, counted once', async () => {
    const log = path.join(logs, 'access.log');
    writeFileSync(log, get(ENGINE1, 0) + repomd(1));
    await run(log);
    for (let m = 2; m < 20; m++) appendFileSync(log, get(ENGINE2, m));
    expect((await run(log)).logs[0]).toMatchObject({ lines: 20, alreadyRead: 2, downloads: 18 });
    expect(Object.values(readUsageRecord(repo).logs)).toEqual([expect.objectContaining({ lines: 20, head: 8 })]);
    appendFileSync(log, get(ENGINE1, 30));
    writeFileSync(`${log}.1.gz`, gzipSync(readFileSync(log)));
    expect((await run(`${log}.1.gz`, log)).logs.map((l) => [l.alreadyRead, l.downloads])).toEqual([
      [20, 1],
      [21, 0],
    ]);
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '2 2026-11-27T10:30:00Z', [nvrOf(ENGINE2)]: '18 2026-11-27T10:19:00Z' });
  });

  it('a build retention removed since: requests for its file still count (the record remembers its file)', async () => {
    const log = path.join(logs, 'access.log');
    writeFileSync(log, get(ENGINE1, 1));
    await run(log);
    writeSnapshot('20261125000000', [ENGINE2]);
    rmSync(path.join(repo, '.snapshots', '20261120000300'), { recursive: true });
    appendFileSync(log, get(ENGINE1, 8));
    const r = await run(log);
    expect(r.logs[0]).toMatchObject({ downloads: 1, ignored: 0 });
    expect(downloads()).toEqual({ [nvrOf(ENGINE1)]: '2 2026-11-27T10:08:00Z' });
  });

  it('bad input is refused before anything is written (exit 2)', async () => {
    const log = path.join(logs, 'access.log');
    writeFileSync(log, get(ENGINE1, 1));
    await expect(run(log, path.join(logs, 'missing.log'))).rejects.toThrow(UsageError);
    await expect(run(log, path.join(logs, 'missing.log'))).rejects.toThrow(/--access-log: '.*missing\.log': does not exist .*\(ENOENT\)/);
    await expect(run(logs)).rejects.toThrow(/--access-log: '.*' is a directory, not a regular file/);
    await expect(run()).rejects.toThrow(/at least one --access-log/);
    await expect(recordUsage(path.join(root, 'nothing-here'), [log])).rejects.toThrow(/^--repo: '.*nothing-here': does not exist/);
    await expect(recordUsage(logs, [log])).rejects.toThrow(/is not a published repository/);
    expect(existsSync(usageFile(repo))).toBe(false);
  });

  it('an overlong line is one malformed line naming its length; a log past the size bound is exit 2 naming the file and the limit, nothing recorded', async () => {
    const log = path.join(logs, 'access.log');
    writeFileSync(log, `${get(ENGINE1, 1)}${'\0'.repeat(5000)}${get(ENGINE1, 2)}${get(ENGINE2, 3)}`);
    const limits = { maxLineBytes: 1024, maxBytes: 1 << 20 };
    const r = await recordUsage(repo, [log], { localTime: utcLocalTime, now: new Date('2026-11-29T12:00:00Z'), limits });
    // The zeros and the line they ran into (no line break between) are one line.
    expect(r.logs[0]).toMatchObject({ lines: 3, downloads: 2, malformed: 1, malformedExamples: [`${log}:2: a line of ${5000 + get(ENGINE1, 2).length - 1} bytes, longer than any server writes (at most 1024 read): skipped`] });
    const recorded = readFileSync(usageFile(repo), 'utf8');
    const bomb = path.join(logs, 'access.log.2.gz');
    writeFileSync(bomb, gzipSync(Buffer.alloc(3 << 20)));
    const err = await recordUsage(repo, [log, bomb], { limits }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toBe(`--access-log: ${quoteMiddle(bomb)} decompresses to more than ${1 << 20} bytes (the limit of one log): not an access log as a server writes one? Nothing was recorded`);
    expect(readFileSync(usageFile(repo), 'utf8')).toBe(recorded);
  });

  it('a damaged usage.json is reported, not silently replaced', async () => {
    writeFileSync(usageFile(repo), '{"schema": 1, "builds": ');
    expect(() => readUsageRecord(repo)).toThrow(/not valid JSON/);
    const log = path.join(logs, 'access.log');
    writeFileSync(log, get(ENGINE1, 1));
    await expect(run(log)).rejects.toThrow(/not valid JSON/);
    expect(readFileSync(usageFile(repo), 'utf8')).toBe('{"schema": 1, "builds": ');
  });
});

describe('usage for retention', () => {
  it('usedPin pins the builds downloaded within the window, reading usage.json when first asked', async () => {
    const pin = usedPin(repo, 3, new Date('2026-11-29T12:00:00Z'));
    const log = path.join(logs, 'access.log');
    writeFileSync(log, get(ENGINE1, 1));
    // Recorded after the pin was made, before retention asks: what retention sees.
    await run(log);
    expect(pin.pin(ENGINE1)).toBe(true);
    expect(pin.pin(ENGINE2)).toBe(false);
    expect(pin.used()!.usage.get(nvrOf(ENGINE1))!.downloads).toBe(1);
    expect(usedPin(repo, 2, new Date('2026-11-29T12:00:00Z')).pin(ENGINE1)).toBe(false);
  });

  it('--keep-used-within: a positive number of days, and only with --keep', () => {
    expect(publishOpts({ repo, keepUsedWithin: '0.5', keep: '2' }).keep).toBe(2);
    for (const bad of ['0', '-1', 'week', '7d', '', '1e3', '3651', '9'.repeat(400)]) {
      expect(() => publishOpts({ repo, keepUsedWithin: bad, keep: '2' })).toThrow(new UsageError(`--keep-used-within: '${bad.length > 60 ? `${bad.slice(0, 60)}…' (400 characters)` : `${bad}'`} is not a positive number of days (more than 0, at most 3650)`));
    }
    expect(() => publishOpts({ repo, keepUsedWithin: '7' })).toThrow(/--keep-used-within goes with --keep/);
    // The window travels as data: publish reads usage.json under its lock and plans with the "used" rule.
    expect(publishOpts({ repo, keepUsedWithin: '7', keep: '2' }).keepUsedWithin).toBe(7);
    expect(publishOpts({ repo, keep: '2' }).keepUsedWithin).toBeUndefined();
    expect(publishOpts({ repo, keep: '2' }).pin).toBeUndefined();
  });

  it('warns when no log was read within the window', () => {
    const now = new Date('2026-11-29T12:00:00Z');
    expect(staleness(emptyUsage(), 7, now)).toMatch(/no access log has been read/);
    const rec = { ...emptyUsage(), logs: { a: { lines: 1, head: 1, file: '/x', read: '2026-11-20T00:00:00Z' }, b: { lines: 1, head: 1, file: '/y', read: '2026-11-25T00:00:00Z' } } };
    expect(staleness(rec, 7, now)).toBeUndefined();
    expect(staleness(rec, 3, now)).toMatch(/at 2026-11-25T00:00:00Z, more than 3 day\(s\) ago/);
  });
});
