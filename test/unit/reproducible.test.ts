// The pure parts of reproducible layers: where a layer's time comes from, the seeds derived from its
// key, the sysprep rules and their shell rendering, reading a Release file's date, the tree
// comparison, and the e2fsprogs helpers of the repack.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, lstatSync, utimesSync } from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rootPartitionScript } from '../../src/builder/base.js';
import { normalize, normalizeJks } from '../../src/builder/normalize.js';
import { resolveInGuest, sealTree } from '../../src/builder/seal.js';
import { SYSPREP_RULES, firstbootFiles, sysprepScript } from '../../src/builder/sysprep.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { parseSourceDate } from '../../src/definitions/names.js';
import { BUILDER_EPOCH, baseSeeds, layerEpoch, seedUuid } from '../../src/plan/epoch.js';
import { computeKeys } from '../../src/plan/keys.js';
import { releaseTime } from '../../src/records/build.js';
import { metadataDate } from '../../src/plan/upstream.js';
import { aspectCounts, compareTrees, knownPathPattern, splitKnown } from '../../src/reproduce/compare.js';
import { intersectRanges, mergeRanges, ownRanges, subtractRanges } from '../../src/reproduce/blocks.js';
import type { Tree, TreeEntry } from '../../src/reproduce/tree.js';
import { describeVerdict, verdictExitCode, type ReproVerdict } from '../../src/jobs/reproduce.js';
import { fromShipped, shippedRecord, type BuildRecord } from '../../src/records/build.js';
import { mkfsArgs, timeCommands, usedInodes } from '../../src/tools/e2fsprogs.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';

const UP = 'http://mirror.example/dists/updates/InRelease';
const BASE_UP = 'http://mirror.example/dists/stable/InRelease';

function set(extraSetKeys = '') {
  return loadLayerSet(
    writeLayerSet({
      ...demoSet({ isDefault: true, extraSetKeys }),
      'base/layer.yaml': `base:\n  mmdebstrap: {packages: [openssh-server]}\nupstream: [${BASE_UP}]\n`,
      'upgrade/layer.yaml': `parent: base\nupstream: [${UP}]\nsteps:\n  - upgrade: true\n`,
    }).layersDir,
    'demo',
  );
}

describe("a layer's SOURCE_DATE_EPOCH", () => {
  const t1 = Date.UTC(2026, 5, 10) / 1000;
  const t2 = Date.UTC(2026, 11, 6, 2, 54, 29) / 1000;

  it('is the newest date of the upstream metadata the layer and its ancestors declare', () => {
    const ls = set();
    const dates = { [BASE_UP]: t1, [UP]: t2 };
    expect(layerEpoch(ls, 'base', dates)).toBe(t1);
    expect(layerEpoch(ls, 'upgrade', dates)).toBe(t2);
    // A leaf declares nothing of its own: its parent's time.
    expect(layerEpoch(ls, 'engine-installed', dates)).toBe(t2);
  });

  it("without dates: the set's source_date, else the builder's fixed epoch; never earlier than the set's", () => {
    expect(layerEpoch(set(), 'upgrade', {})).toBe(BUILDER_EPOCH);
    const ls = set('source_date: 2026-11-01');
    expect(ls.set.sourceDate).toBe(Date.UTC(2026, 10, 1) / 1000);
    expect(layerEpoch(ls, 'upgrade', {})).toBe(Date.UTC(2026, 10, 1) / 1000);
    expect(layerEpoch(ls, 'base', { [BASE_UP]: t1 })).toBe(Date.UTC(2026, 10, 1) / 1000);
  });

  it('is an input of the key: a new upstream date is a new key for the layers that see it', () => {
    const ls = set();
    const k = (dates: Record<string, number>) => Object.fromEntries([...computeKeys(ls, { digests: { [BASE_UP]: 'a'.repeat(64), [UP]: 'b'.repeat(64) }, dates })].map(([l, v]) => [l, v.key]));
    const a = k({ [BASE_UP]: t1, [UP]: t2 });
    const b = k({ [BASE_UP]: t1, [UP]: t2 + 1 });
    expect(Object.keys(a).filter((l) => a[l] !== b[l]).sort()).toEqual(['engine-installed', 'host-installed', 'upgrade']);
    expect(computeKeys(ls, { digests: {}, dates: { [UP]: t2 } }).get('host-installed')!.manifest.sourceDateEpoch).toBe(t2);
  });

  it.each([
    ['2026-12-01', Date.UTC(2026, 11, 1) / 1000],
    ['2026-12-01T06:30:00Z', Date.UTC(2026, 11, 1, 6, 30) / 1000],
    ['2020-01-01', Date.UTC(2020, 0, 1) / 1000],
    ['2026-02-31', undefined],
    ['2026-12-01T06:30:00+01:00', undefined],
    ['2019-12-31', undefined],
    ['2100-01-01', undefined],
    ['yesterday', undefined],
  ])('source_date %s reads as %s', (text, want) => {
    expect(parseSourceDate(text)).toBe(want);
  });

  it('source_date that is not a date is a validation error naming the file and key', () => {
    expect(() => set('source_date: 2026-13-01')).toThrow(/set\.yaml:\d+: \.source_date: '2026-13-01' must be a UTC date from 2020-01-01/);
  });
});

describe('upstream metadata dates', () => {
  it.each([
    ['a Release file', 'Origin: Debian\nLabel: Debian\nSuite: stable\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nAcquire-By-Hash: yes\n', Date.UTC(2026, 6, 11, 10, 16, 37) / 1000],
    ['an InRelease file', '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nDate: Sun, 06 Dec 2026 02:54:29 UTC\nValid-Until: Sun, 13 Dec 2026 02:54:29 UTC\n', Date.UTC(2026, 11, 6, 2, 54, 29) / 1000],
    ['a repomd.xml', '<?xml version="1.0"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo">\n  <revision>1764988469</revision>\n', 1764988469],
    ['a Date in a later paragraph only', 'Origin: x\n\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n', undefined],
    ['no date', 'Origin: x\n', undefined],
    ['an unreadable date', 'Date: someday\n', undefined],
  ])('%s', (_what, text, want) => {
    expect(metadataDate(text)).toBe(want);
  });
});

describe('seeds from the key', () => {
  it('are fixed for a key, different for another key and for another purpose', () => {
    const k1 = 'a'.repeat(64);
    const s = baseSeeds(k1);
    expect(baseSeeds(k1)).toEqual(s);
    expect(baseSeeds('b'.repeat(64)).fsUuid).not.toBe(s.fsUuid);
    expect(s.fsUuid).not.toBe(s.hashSeed);
    expect(s.fsUuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(s.diskId).toMatch(/^0x[0-9a-f]{8}$/);
    expect(s.diskId).not.toBe('0x00000000');
    expect(seedUuid(k1, 'x')).toBe(seedUuid(k1, 'x'));
  });

  it('name the disk in the partition script and the file system in mke2fs', () => {
    expect(rootPartitionScript('0x1234abcd')).toBe('label: dos\nlabel-id: 0x1234abcd\nstart=2048, type=83, bootable\n');
    expect(mkfsArgs('/w/d.raw', { label: 'root', id: { uuid: 'U', hashSeed: 'H' }, from: '/w/root', offset: 1048576, blocks: 2097146 })).toEqual([
      '-q', '-F', '-t', 'ext4', '-b', '4096', '-L', 'root', '-J', 'size=32', '-U', 'U', '-E', 'hash_seed=H,root_owner=0:0,nodiscard,offset=1048576', '-d', '/w/root', '/w/d.raw', '2097146',
    ]);
    expect(mkfsArgs('/dev/loop0p1', { label: 'root' })).toEqual(['-q', '-F', '-t', 'ext4', '-b', '4096', '-L', 'root', '-J', 'size=32', '-E', 'root_owner=0:0,nodiscard', '/dev/loop0p1']);
  });
});

describe('the repack helpers', () => {
  it("list the inodes in use from dumpe2fs's free ranges (the root, lost+found and up; not the other reserved ones)", () => {
    const out = ['Inodes per group:         16', 'Group 0: (Blocks 0-32767)', '  Free inodes: 14-16', 'Group 1: (Blocks 32768-65535) [INODE_UNINIT]', '  Free inodes: 17, 19-32', 'Group 2: (Blocks 65536-98303)', '  Free inodes: '].join('\n');
    expect(usedInodes(out)).toEqual([2, 11, 12, 13, 18, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48]);
    expect(() => usedInodes('nothing')).toThrow('Inodes per group');
  });
  it('set change and access times of each inode to the epoch', () => {
    expect(timeCommands([2, 12], Date.UTC(2026, 6, 11, 10, 16, 37) / 1000)).toBe('sif <2> ctime 20260711101637\nsif <2> atime 20260711101637\nsif <12> ctime 20260711101637\nsif <12> atime 20260711101637\n');
  });
});

describe('sysprep', () => {
  const epoch = Date.UTC(2026, 0, 2) / 1000;

  function guest(): string {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ost-seal-'));
    const files: Record<string, string> = {
      'etc/ssh/ssh_host_ed25519_key': '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n',
      'etc/ssh/ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAA host\n',
      'etc/ssh/sshd_config': 'PermitRootLogin prohibit-password\n',
      'etc/ssl/private/ssl-cert-snakeoil.key': '-----BEGIN PRIVATE KEY-----\nx\n',
      'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
      'var/lib/dbus/machine-id': '0123456789abcdef0123456789abcdef\n',
      'var/lib/systemd/random-seed': 'seed',
      'var/log/dpkg.log': 'installed x\n',
      'var/log/apt/eipp.log.xz': 'xz',
      'var/log/postgresql/postgresql-15-main.log': 'started\n',
      'var/log/journal/abc/system.journal': 'j',
      'var/cache/ldconfig/aux-cache': 'c',
      'root/.bash_history': 'ls\n',
      'tmp/leftover': 'x',
      'usr/share/doc/x/README': 'package file\n',
    };
    for (const [f, c] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
      writeFileSync(path.join(root, f), c);
    }
    // A package's file from long ago keeps its time; everything else was made "now".
    utimesSync(path.join(root, 'usr/share/doc/x/README'), 1_600_000_000, 1_600_000_000);
    return root;
  }

  it('takes out what is per machine or of the build, empties logs, dates the tree, writes the first-boot unit', async () => {
    const root = guest();
    try {
      const r = await sealTree(root, { layer: 'base', epoch, firstBoot: true });
      const exists = (f: string) => lstatSync(path.join(root, f), { throwIfNoEntry: false }) !== undefined;
      for (const gone of ['etc/ssh/ssh_host_ed25519_key', 'etc/ssh/ssh_host_ed25519_key.pub', 'etc/ssl/private/ssl-cert-snakeoil.key', 'var/lib/systemd/random-seed', 'var/log/apt/eipp.log.xz', 'var/log/journal/abc', 'var/cache/ldconfig/aux-cache', 'root/.bash_history', 'tmp/leftover']) {
        expect(exists(gone), gone).toBe(false);
      }
      expect(readFileSync(path.join(root, 'etc/ssh/sshd_config'), 'utf8')).toContain('PermitRootLogin');
      expect(readFileSync(path.join(root, 'etc/machine-id'), 'utf8')).toBe('');
      expect(readlinkSync(path.join(root, 'var/lib/dbus/machine-id'))).toBe('/etc/machine-id');
      // Logs stay, empty, so daemons find them with their owners; the folder of the journal too.
      expect(readFileSync(path.join(root, 'var/log/postgresql/postgresql-15-main.log'), 'utf8')).toBe('');
      expect(readFileSync(path.join(root, 'var/log/dpkg.log'), 'utf8')).toBe('');
      expect(exists('var/log/journal')).toBe(true);
      expect(readlinkSync(path.join(root, 'etc/systemd/system/sysinit.target.wants/ost-images-firstboot.service'))).toBe('/etc/systemd/system/ost-images-firstboot.service');
      expect(readFileSync(path.join(root, 'usr/libexec/ost-images/firstboot'), 'utf8')).toContain('ssh-keygen -q -t "$t"');
      // Every time is the epoch at most; the package's older file keeps its own.
      expect(lstatSync(path.join(root, 'etc/ssh/sshd_config')).mtimeMs).toBe(epoch * 1000);
      expect(lstatSync(path.join(root, 'var/lib/dbus/machine-id')).mtimeMs).toBe(epoch * 1000);
      expect(lstatSync(path.join(root, 'usr/share/doc/x/README')).mtimeMs).toBe(1_600_000_000_000);
      expect(lstatSync(root).mtimeMs).toBe(epoch * 1000);
      expect(r.removed).toContain('/etc/ssh/ssh_host_ed25519_key');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('fails naming a private key a step made where no rule knows it', async () => {
    const root = guest();
    try {
      mkdirSync(path.join(root, 'etc/myapp'));
      writeFileSync(path.join(root, 'etc/myapp/server.key'), 'x\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n');
      await expect(sealTree(root, { layer: 'app', epoch, firstBoot: false })).rejects.toThrow(/app: the image would carry what no image may[^]*\/etc\/myapp\/server\.key holds a private key made during the build/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('dates an immutable file too, and leaves it immutable (extlinux makes ldlinux.sys so)', async () => {
    const root = guest();
    const f = path.join(root, 'boot', 'ldlinux.sys');
    try {
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, 'boot code');
      execFileSync('chattr', ['+i', f]);
      await sealTree(root, { layer: 'base', epoch, firstBoot: false });
      expect(lstatSync(f).mtimeMs).toBe(epoch * 1000);
      expect(execFileSync('lsattr', ['-d', f]).toString()).toMatch(/^-*i/);
    } finally {
      execFileSync('chattr', ['-i', f]);
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('resolves guest paths inside the guest: an absolute link never reaches the host', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ost-seal-'));
    try {
      mkdirSync(path.join(root, 'run/x'), { recursive: true });
      mkdirSync(path.join(root, 'var'));
      mkdirSync(path.join(root, 'etc'));
      symlinkSync('/run', path.join(root, 'var/run'));
      symlinkSync('/etc', path.join(root, 'var/hostetc'));
      expect(resolveInGuest(root, '/var/run/x', true)).toBe(path.join(root, 'run/x'));
      expect(resolveInGuest(root, '/var/hostetc/passwd')).toBe(path.join(root, 'etc/passwd'));
      expect(resolveInGuest(root, '/var/run/../../../../etc/passwd')).toBe(path.join(root, 'etc/passwd'));
      // The last component is the entry itself unless asked.
      expect(resolveInGuest(root, '/var/run')).toBe(path.join(root, 'var/run'));
      // A folder on the way that is missing: nothing to act on.
      expect(resolveInGuest(root, '/srv/x/y')).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('renders the same rules for the guestfs backend, quoted, ending in the clamp and the key check', () => {
    const s = sysprepScript(epoch);
    for (const r of SYSPREP_RULES) expect(s).toContain(`'${r.action === 'remove' ? path.posix.dirname(r.path) : r.path}'`);
    expect(s).toContain("for f in '/etc/ssh'/'ssh_host_'*; do");
    expect(s).toContain(`find / -xdev -newermt @${epoch} -exec touch -h -d @${epoch} {} +`);
    expect(s.trim().endsWith('exit $bad')).toBe(true);
  });

  it('makes keys at first boot before the services that use them', () => {
    const { files, enable } = firstbootFiles();
    const unit = files.find(([p]) => p.endsWith('.service'))![1];
    expect(unit).toMatch(/^Before=sysinit\.target ssh\.service .*postgresql\.service/m);
    expect(unit).toContain('DefaultDependencies=no');
    expect(enable[0]).toBe('/etc/systemd/system/sysinit.target.wants/ost-images-firstboot.service');
  });
});

describe('comparing trees', () => {
  const e = (over: Partial<TreeEntry> = {}): TreeEntry => ({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1700000000000000000', size: 3, sha256: 'a'.repeat(64), ...over });
  it('names every path that differs and how', () => {
    const a: Tree = new Map([['/', e({ type: 'dir', size: undefined, sha256: undefined })], ['/same', e()], ['/content', e()], ['/mode', e()], ['/owner', e()], ['/mtime', e()], ['/link', e({ type: 'link', target: 'x' })], ['/gone', e()]]);
    const b: Tree = new Map([['/', e({ type: 'dir', size: undefined, sha256: undefined })], ['/same', e()], ['/content', e({ sha256: 'b'.repeat(64) })], ['/mode', e({ mode: 0o600 })], ['/owner', e({ uid: 1 })], ['/mtime', e({ mtime: '1700000001000000000' })], ['/link', e({ type: 'link', target: 'y' })], ['/new', e()]]);
    const c = compareTrees(a, b);
    expect(c.entries).toBe(8);
    expect(c.identical).toBe(2);
    expect(c.differing.map((d) => [d.path, d.aspects])).toEqual([
      ['/content', ['content']],
      ['/gone', ['missing']],
      ['/link', ['target']],
      ['/mode', ['mode']],
      ['/mtime', ['mtime']],
      ['/new', ['extra']],
      ['/owner', ['owner']],
    ]);
    expect(c.differing.find((d) => d.path === '/mtime')!.detail).toBe('mtime 2023-11-14T22:13:20.000Z / 2023-11-14T22:13:21.000Z');
    expect(aspectCounts(c)).toEqual({ content: 1, missing: 1, target: 1, mode: 1, mtime: 1, extra: 1, owner: 1 });
  });
});

describe('records as packages ship them', () => {
  it('carry nothing of one run; taken back, the start comes from the release', () => {
    const rec = { schema: 1, set: 's', layer: 'base', version: '12', release: '20261207140146', image: 'i.qcow2', backend: 'base', builtAt: '2026-12-07T14:01:46.123Z', seconds: 140.2, virtualSize: 1, allocatedSize: 2 } as BuildRecord;
    const shipped = shippedRecord(rec);
    expect(shipped).not.toHaveProperty('builtAt');
    expect(shipped).not.toHaveProperty('seconds');
    expect(fromShipped(shipped)).toEqual({ ...rec, builtAt: '2026-12-07T14:01:46.000Z', seconds: 0 });
    expect(releaseTime('20261207140146.2')).toBe('2026-12-07T14:01:46.000Z');
    expect(releaseTime('1')).toBeUndefined();
  });
});

describe('normalizing Java key stores', () => {
  // A JKS (version 2) as keytool writes it: entries with their creation times, a keyed SHA-1 at the end.
  function jks(stamps: bigint[], password = 'changeit'): Buffer {
    const parts: Buffer[] = [];
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
    const utf = (s: string) => { const b = Buffer.from(s, 'utf8'); const l = Buffer.alloc(2); l.writeUInt16BE(b.length); return Buffer.concat([l, b]); };
    const i64 = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(n); return b; };
    parts.push(u32(0xfeedfeed), u32(2), u32(stamps.length));
    stamps.forEach((t, i) => {
      if (i === 0) parts.push(u32(1), utf('mykey'), i64(t), u32(3), Buffer.from('key'), u32(1), utf('X.509'), u32(4), Buffer.from('cert'));
      else parts.push(u32(2), utf(`debian:ca-${i}.pem`), i64(t), utf('X.509'), u32(5), Buffer.from('cert!'));
    });
    const body = Buffer.concat(parts);
    const pw = Buffer.alloc(password.length * 2);
    for (let i = 0; i < password.length; i++) pw.writeUInt16BE(password.charCodeAt(i), i * 2);
    return Buffer.concat([body, createHash('sha1').update(pw).update('Mighty Aphrodite').update(body).digest()]);
  }
  const epoch = 1_765_000_000;

  it('clamps every entry time to the epoch and recomputes the digest: two builds give the same bytes', () => {
    const a = jks([1_765_100_000_123n, 1_765_100_000_456n, 1_600_000_000_000n]);
    const b = jks([1_765_200_000_999n, 1_765_200_001_000n, 1_600_000_000_000n]);
    const na = normalize(a, epoch)!;
    expect(na).toBeDefined();
    expect(na.equals(normalize(b, epoch)!)).toBe(true);
    expect(na.equals(jks([1_765_000_000_000n, 1_765_000_000_000n, 1_600_000_000_000n]))).toBe(true);
  });

  it('leaves alone what it cannot vouch for: another password, a truncated store, nothing to change, not a key store', () => {
    expect(normalizeJks(jks([1_765_100_000_000n], 'secret'), epoch)).toBeUndefined();
    const t = jks([1_765_100_000_000n, 1_765_100_000_000n]);
    expect(normalizeJks(Buffer.concat([t.subarray(0, 40), t.subarray(t.length - 20)]), epoch)).toBeUndefined();
    expect(normalize(jks([1_600_000_000_000n]), epoch)).toBeUndefined();
    expect(normalize(Buffer.from('PK\u0003\u0004 not a key store at all......................'), epoch)).toBeUndefined();
  });
});

describe('known differences', () => {
  it("match '*' within a name and '**' across folders", () => {
    const re = knownPathPattern('/var/lib/postgresql/*/main/pg_wal/*');
    expect(re.test('/var/lib/postgresql/15/main/pg_wal/000000010000000000000001')).toBe(true);
    expect(re.test('/var/lib/postgresql/15/main/pg_wal/archive_status/x')).toBe(false);
    expect(knownPathPattern('/var/lib/**/pg_control').test('/var/lib/postgresql/15/main/global/pg_control')).toBe(true);
    expect(knownPathPattern('/var/lib/**/pg_control').test('/var/lib/pg_control')).toBe(true);
    expect(knownPathPattern('/a.b').test('/aXb')).toBe(false);
  });
  it('are set apart with their reason; only the others make a build different', () => {
    const d = (p: string) => ({ path: p, aspects: ['content' as const], detail: '' });
    const r = splitKnown([d('/var/lib/postgresql/15/main/global/pg_control'), d('/etc/motd')], [{ path: '/var/lib/postgresql/*/main/global/pg_control', why: 'initdb' }]);
    expect(r.known.map((k) => [k.path, k.why])).toEqual([['/var/lib/postgresql/15/main/global/pg_control', 'initdb']]);
    expect(r.unexpected.map((u) => u.path)).toEqual(['/etc/motd']);
  });
});

describe('block-level comparison', () => {
  it("takes the ranges an overlay holds itself, merged", () => {
    const e = (start: number, length: number, depth: number, present = true) => ({ start, length, depth, present, zero: false, data: present });
    expect(ownRanges([e(0, 4096, 1), e(4096, 8192, 0), e(12288, 4096, 0), e(16384, 4096, 0, false), e(20480, 4096, 0)])).toEqual([[4096, 16384], [20480, 24576]]);
    expect(mergeRanges([[10, 20], [0, 5], [5, 8], [15, 30]])).toEqual([[0, 8], [10, 30]]);
  });
});

describe("a verdict, as people read it", () => {
  it('names the build, the outcome, what differs and how, and the known differences apart', () => {
    const v: ReproVerdict = {
      layer: 'b', build: '12-20261207144221', status: 'different', reason: '1 path(s) differ', seconds: 61,
      image: { bytesIdentical: false, sha256: 'a'.repeat(64), rebuiltSha256: 'b'.repeat(64), guaranteed: false, differingBytes: 4013, blocks: { blocks: 403472, differing: 29 } },
      tree: { entries: 13559, identical: 13558, differing: 1, aspects: { content: 1, mtime: 1 }, paths: [{ path: '/srv/b.txt', aspects: ['content', 'mtime'], detail: 'content 32 bytes / 7 bytes' }], known: [{ path: '/var/x', aspects: ['content'], detail: '', why: 'initdb' }] },
    };
    expect(describeVerdict(v)).toEqual([
      'b 12-20261207144221: DIFFERENT (1 path(s) differ)',
      '  files: 13558 of 13559 identical, 1 differ (content 1, mtime 1), 1 known to differ',
      '  known: /var/x: content (initdb)',
      `  image: different bytes (not guaranteed for this layer: it is written through a mounted file system) (sha256 ${'a'.repeat(16)}… / ${'b'.repeat(16)}…; 29 of the 403472 4 KiB blocks the overlays hold differ, 4013 bytes of the files)`,
      '  /srv/b.txt: content, mtime: content 32 bytes / 7 bytes',
    ]);
    expect(verdictExitCode([v])).toBe(1);
    expect(verdictExitCode([{ ...v, status: 'not-checked' }])).toBe(2);
    expect(verdictExitCode([{ ...v, status: 'identical' }])).toBe(0);
  });
});

describe('range arithmetic', () => {
  it('subtracts and intersects merged ranges', () => {
    expect(subtractRanges([[0, 100], [200, 300]], [[10, 20], [50, 250]])).toEqual([[0, 10], [20, 50], [250, 300]]);
    expect(subtractRanges([[0, 10]], [])).toEqual([[0, 10]]);
    expect(intersectRanges([[0, 100], [200, 300]], [[50, 250], [290, 400]])).toEqual([[50, 100], [200, 250], [290, 300]]);
  });
});
