// Mirrors on the real tools: a loopback rsync daemon and a local directory as destinations, dnf's
// own metadata loading (and a client fetching packages) polling a mirror while it is synced, held
// at every phase boundary, never sees a mixture nor fails a fetch; a mirror SIGKILLed mid-package
// and run again completes; --verify catches a damaged, a missing and an extra file; a .repo file
// with a dead first baseurl and a live mirror second installs through the mirror.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, writeSync, readSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { pidsWhere } from '../../src/core/proc.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { publish } from '../../src/publish/publish.js';
import { listSnapshots, readSnapshot, servedStamp } from '../../src/repository/snapshot.js';
import { Store } from '../../src/store/store.js';
import { cli, startCli, stopStartedClis, waitFor } from '../helpers/cli.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';
import { expectOneSnapshotAtATime, mirrorJson as mirrorJsonOf, packagesOf as packagesOfRepo, pollDuringHeldSync, sha, snapshotLists, topLinks, visibleFiles } from '../helpers/mirror.js';
import { freePort } from '../../src/consume/guest-ssh.js';

const packagesOf = (stampName: string) => packagesOfRepo(repo, stampName);

const execFileP = promisify(execFile);
const tmp = testTmp('mirror');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const repo = path.join(tmp, 'repo');
const local = path.join(tmp, 'local-mirror');
const daemonDir = path.join(tmp, 'daemon-module');
let daemon: ChildProcess | undefined;
let daemonUrl: string;
let layersDir: string;
let ls: LayerSet;
let stamp = 20260301000000;
const servers: Server[] = [];

async function newEngine(): Promise<string> {
  await fakeBuild(store, 'demo', 'engine-installed', String(stamp++), store.current('demo', 'upgrade')!, 0x70 + (stamp % 16));
  return (await packageLayers(ls, ['engine-installed'], store))[0]!.rpm;
}

/** A publish with a grace period of 0: snapshots retired before the one it replaces are removed. */
async function publishNew(): Promise<void> {
  const saved = process.env.OST_IMAGES_SNAPSHOT_GRACE;
  process.env.OST_IMAGES_SNAPSHOT_GRACE = '0';
  try {
    await publish(repo, [await newEngine()]);
  } finally {
    if (saved === undefined) delete process.env.OST_IMAGES_SNAPSHOT_GRACE;
    else process.env.OST_IMAGES_SNAPSHOT_GRACE = saved;
  }
}

const mirrorArgs = (...rest: string[]) => ['mirror', '--repo', repo, ...rest];

const mirrorJson = (...rest: string[]) => mirrorJsonOf(repo, rest);

/**
 * A 48 MiB file first in the pool's order, listed by no snapshot: what a mirror sends first. Made
 * after a publish (whose retention would remove it); the caller removes it.
 */
function writeBigPackage(): string {
  const big = path.join(repo, 'packages', 'aaa-big-1-1.noarch.rpm');
  const fd = openSync(big, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < 48; i++) {
    chunk.fill(i);
    chunk.writeUInt32LE((i * 2654435761) >>> 0, 0);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  return big;
}

function rsyncPidsOf(src: string): number[] {
  return pidsWhere((argv) => path.basename(argv[0]!) === 'rsync' && argv.includes(`${src}/`));
}

beforeAll(async () => {
  layersDir = writeLayerSet(demoSet({ isDefault: true })).layersDir;
  ls = loadLayerSet(layersDir, 'demo');
  await publishedDemoChain(ls, store, repo);
  await publish(repo, [await newEngine()]);
  // The daemon as a mirror host would run it: a writable module, symlinks stored as they are.
  mkdirSync(daemonDir);
  const conf = path.join(tmp, 'rsyncd.conf');
  writeFileSync(conf, ['use chroot = no', 'munge symlinks = no', `pid file = ${path.join(tmp, 'rsyncd.pid')}`, '[mirror]', `  path = ${daemonDir}`, '  read only = no', '  uid = root', '  gid = root', ''].join('\n'));
  const port = await freePort();
  daemon = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, '--port', String(port), '--address', '127.0.0.1'], { stdio: 'ignore' });
  let exited = false;
  daemon.on('exit', () => (exited = true));
  // The daemon announces nothing on a pipe: it is ready when it accepts a connection (the
  // deadline only bounds a hang).
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
  const t0 = Date.now();
  while (!(await accepts())) {
    if (exited || Date.now() - t0 > 120_000) throw new Error('the rsync daemon did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  daemonUrl = `rsync://127.0.0.1:${port}/mirror/ost`;
}, 300_000);

afterAll(async () => {
  await stopStartedClis();
  for (const s of servers) s.stop();
  daemon?.kill();
  for (const pid of rsyncPidsOf(repo)) process.kill(pid, 'SIGKILL');
  removeTree(tmp);
}, 300_000);

describe('ost-images mirror', () => {
  it('syncs a local directory and an rsync daemon in one run: a complete copy, hard links kept, --verify passes, a second run sends nothing', async () => {
    const r = await mirrorJson('--to', local, '--to', daemonUrl);
    expect(r.code, r.stderr).toBe(0);
    expect(r.report.snapshot).toBe(servedStamp(repo));
    expect(r.report.destinations.map((d) => [d.dest, d.kind])).toEqual([
      [local, 'local'],
      [daemonUrl, 'daemon'],
    ]);
    for (const d of r.report.destinations) {
      expect(d.phases!.map((p) => p.phase)).toEqual(['data', 'metadata', 'switch', 'delete']);
      expect(d.files).toBeGreaterThan(5);
      expect(d.phases![0]!.files).toBeGreaterThanOrEqual(packagesOf(servedStamp(repo)!).length);
    }
    const mirrorDir = path.join(daemonDir, 'ost');
    for (const dir of [local, mirrorDir]) {
      expect(visibleFiles(dir).sort()).toEqual(visibleFiles(repo).sort());
      for (const f of visibleFiles(repo)) expect(sha(path.join(dir, f)), f).toBe(sha(path.join(repo, f)));
      expect(topLinks(dir)).toEqual(topLinks(repo));
      // A snapshot's package is the pool's file, not a second copy.
      const s = servedStamp(repo)!;
      const p = packagesOf(s)[0]!;
      expect(statSync(path.join(dir, '.snapshots', s, 'packages', p)).ino).toBe(statSync(path.join(dir, 'packages', p)).ino);
    }
    const v = await mirrorJson('--to', local, '--to', daemonUrl, '--verify');
    expect(v.code, v.stderr).toBe(0);
    expect(v.report.destinations.map((d) => d.verify)).toEqual([
      { ok: true, differing: [], missing: [], extra: [] },
      { ok: true, differing: [], missing: [], extra: [] },
    ]);
    const again = await mirrorJson('--to', local, '--to', daemonUrl);
    expect(again.code, again.stderr).toBe(0);
    expect(again.report.destinations.map((d) => [d.files, d.deleted])).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });

  /**
   * A held sync of `dest` (served over HTTP from `mirrorDir`) after a new publish, read all along
   * by dnf and by a client fetching packages (pollDuringHeldSync): each poll sees exactly one
   * snapshot, the old one up to the switch and the new one from then on, and no fetch fails.
   */
  async function heldSync(dest: string, mirrorDir: string): Promise<void> {
    // The mirror serves what the source serves now; then the source publishes.
    expect((await cli(mirrorArgs('--to', dest))).code).toBe(0);
    const server = await serveDirectory(mirrorDir);
    servers.push(server);
    const before = servedStamp(repo)!;
    const oldest = listSnapshots(repo)[0]!;
    await publishNew();
    const after = servedStamp(repo)!;
    // The publish retired the oldest snapshot: the mirror must remove it in its last phase.
    expect(listSnapshots(repo)).not.toContain(oldest);
    expect(existsSync(path.join(mirrorDir, '.snapshots', oldest))).toBe(true);
    const r = await pollDuringHeldSync({ tmp, url: server.url, args: mirrorArgs('--to', dest, '--json'), lists: snapshotLists(repo, before, after) });
    expectOneSnapshotAtATime(r, before, after, dest);
    expect(existsSync(path.join(mirrorDir, '.snapshots', oldest))).toBe(false);
    expect(topLinks(mirrorDir)).toEqual(topLinks(repo));
    // The new snapshot's packages are links of the pool's files there too, also those that were
    // already at the mirror before this sync.
    for (const p of packagesOf(after)) expect(statSync(path.join(mirrorDir, '.snapshots', after, 'packages', p)).ino, p).toBe(statSync(path.join(mirrorDir, 'packages', p)).ino);
  }

  it('a client polling an rsync daemon mirror with dnf during a sync (held at every phase boundary) sees exactly one snapshot each time and never fails a fetch', async () => {
    await heldSync(daemonUrl, path.join(daemonDir, 'ost'));
  }, 600_000);

  it('the same for a local directory mirror', async () => {
    await heldSync(local, local);
  }, 600_000);

  it('a mirror SIGKILLed mid-package leaves no half file under a final name; run again, it completes and --verify passes', async () => {
    await publishNew();
    // A big package first in the pool's order (after the publish: its retention would remove a
    // pool file no snapshot lists): the mirror kills itself while rsync writes it.
    const big = writeBigPackage();
    try {
      const servedBefore = topLinks(local);
      expect(servedBefore).not.toEqual(topLinks(repo));
      const r = await cli(mirrorArgs('--to', local, '--to', daemonUrl), { OST_IMAGES_FAULT: 'mirror:during-data' });
      expect(r.signal, r.stderr).toBe('SIGKILL');
      // The hook said it was set, and when it acted.
      expect(r.stderr).toMatch(/^test hook: OST_IMAGES_FAULT=mirror:during-data: this process kills itself at that point \(for tests only\)$/m);
      expect(r.stderr).toMatch(/^test hook: OST_IMAGES_FAULT=mirror:during-data: reached$/m);
      // Not switched, and every file under its final name is complete.
      expect(topLinks(local)).toEqual(servedBefore);
      for (const f of visibleFiles(local)) {
        if (existsSync(path.join(repo, f))) expect(sha(path.join(local, f)), f).toBe(sha(path.join(repo, f)));
      }
      expect(existsSync(path.join(local, 'packages', 'aaa-big-1-1.noarch.rpm'))).toBe(false);
      // The hook killed it with rsync's temporary file of the big package holding part of it.
      const partial = readdirSync(path.join(local, 'packages')).filter((f) => f.startsWith('.aaa-big-1-1.noarch.rpm.'));
      expect(partial).toHaveLength(1);
      const partialSize = statSync(path.join(local, 'packages', partial[0]!)).size;
      expect(partialSize).toBeGreaterThan(0);
      process.stderr.write(`killed mirror left ${partial[0]} (${partialSize} of ${statSync(big).size} bytes)\n`);
      const again = await mirrorJson('--to', local, '--to', daemonUrl);
      expect(again.code, again.stderr).toBe(0);
      // The stopped rsync of the killed run is gone, and so are its temporary files.
      expect(rsyncPidsOf(repo)).toEqual([]);
      expect(readdirSync(path.join(local, 'packages')).filter((f) => f.startsWith('.'))).toEqual([]);
      expect(topLinks(local)).toEqual(topLinks(repo));
      const v = await mirrorJson('--to', local, '--to', daemonUrl, '--verify');
      expect(v.code, v.stderr).toBe(0);
    } finally {
      rmSync(big, { force: true });
    }
    expect((await mirrorJson('--to', local, '--to', daemonUrl)).code).toBe(0);
  }, 600_000);

  it('--verify names a damaged, a missing and an extra file (exit 1); --checksum repairs them', async () => {
    const s = servedStamp(repo)!;
    const [damaged, gone] = packagesOf(s);
    // One byte flipped, size and time kept: only a checksum sees it.
    const file = path.join(local, 'packages', damaged!);
    const st = statSync(file);
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 1000);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, 1000);
    closeSync(fd);
    utimesSync(file, st.atime, st.mtime);
    const mirrorDir = path.join(daemonDir, 'ost');
    rmSync(path.join(mirrorDir, 'packages', gone!));
    writeFileSync(path.join(mirrorDir, 'packages', 'stray.rpm'), 'x');
    const v = await mirrorJson('--to', local, '--to', daemonUrl, '--verify');
    expect(v.code).toBe(1);
    const [l, d] = v.report.destinations;
    // The damaged file is every name of the damaged inode: the pool's and the snapshots' links.
    expect(l!.verify!.differing).toContain(`packages/${damaged}`);
    expect(l!.verify!.missing).toEqual([]);
    expect(d!.verify).toEqual({ ok: false, differing: [], missing: [`packages/${gone}`], extra: ['packages/stray.rpm'] });
    expect(v.stderr).toContain(`differs:  packages/${damaged}`);
    expect(v.stderr).toContain(`missing:  packages/${gone}`);
    expect(v.stderr).toContain('extra:    packages/stray.rpm');
    const fix = await cli(mirrorArgs('--to', local, '--to', daemonUrl, '--checksum'));
    expect(fix.code, fix.stderr).toBe(0);
    expect((await mirrorJson('--to', local, '--to', daemonUrl, '--verify')).code).toBe(0);
  });

  it('bad input: exit 2 naming the option and value, nothing written', async () => {
    const fresh = path.join(tmp, 'never-written');
    const notRepo = mkdtempSync(path.join(tmp, 'not-a-repo-'));
    const busy = mkdtempSync(path.join(tmp, 'busy-'));
    writeFileSync(path.join(busy, 'precious.txt'), 'mine');
    const cases: [string[], RegExp][] = [
      [['mirror', '--repo', notRepo, '--to', fresh], /--repo: '.*not-a-repo-.*' is not a published repository/],
      [['mirror', '--repo', path.join(tmp, 'nope'), '--to', fresh], /--repo: '.*nope' cannot be read/],
      [mirrorArgs('--to', path.join(repo, 'inside')), /--to: '.*inside' is inside the source repository/],
      [mirrorArgs('--to', tmp), /--to: '.*' contains the source repository/],
      [mirrorArgs('--to', 'rsync://127.0.0.1:99999/m/x'), /--to: 'rsync:\/\/127.0.0.1:99999\/m\/x' has port 99999/],
      [mirrorArgs('--to', 'rsync://host'), /--to: 'rsync:\/\/host' is not rsync:\/\/host\[:port\]\/module/],
      [mirrorArgs('--to', busy), /--to: '.*busy-.*' is neither empty nor a mirror/],
      [mirrorArgs('--to', fresh, '--to', `${fresh}/`), /--to: '.*never-written\/' is given twice/],
      [mirrorArgs(), /--to: give at least one destination/],
      [mirrorArgs('--to', fresh, '--bwlimit', '0'), /--bwlimit: '0' is not a positive whole number of KiB\/s/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync(path.join(repo, 'inside'))).toBe(false);
    expect(readdirSync(busy)).toEqual(['precious.txt']);
  });

  it('SIGTERM while rsync writes a package: rsync stopped (its temporary file with it), exit 130, the lock released, the mirror unchanged', async () => {
    await publishNew();
    const big = writeBigPackage();
    try {
      const before = topLinks(local);
      // 4 MiB/s: rsync is still writing the 48 MiB when the signal comes, on any machine this
      // runs on; the assertions hold either way (a finished rsync leaves no temporary file either).
      const m = startCli(mirrorArgs('--to', local, '--bwlimit', '4096'));
      const temp = () => readdirSync(path.join(local, 'packages')).filter((f) => f.startsWith(`.${path.basename(big)}.`));
      // Nothing announces that rsync has started writing: the file appearing is the event.
      await waitFor(() => temp().some((f) => statSync(path.join(local, 'packages', f), { throwIfNoEntry: false })?.size), 300_000, "rsync's temporary file of the big package");
      m.child.kill('SIGTERM');
      const r = await m.done;
      expect(r.code, r.stderr).toBe(130);
      // rsync's receiver may finish its clean-up a moment after the mirror has exited.
      await waitFor(() => rsyncPidsOf(repo).length === 0, 300_000, 'rsync to exit');
      expect(temp()).toEqual([]);
      expect(existsSync(path.join(repo, '.lock'))).toBe(false);
      expect(topLinks(local)).toEqual(before);
    } finally {
      rmSync(big, { force: true });
    }
    expect((await cli(mirrorArgs('--to', local))).code).toBe(0);
  }, 600_000);

  it('SIGTERM while held between phases: exit 130, the lock released', async () => {
    await publishNew();
    const m = startCli(mirrorArgs('--to', local), { OST_IMAGES_MIRROR_HOLD: '1' });
    await m.until(/mirror-hold data /);
    m.child.kill('SIGUSR2');
    await m.until(/mirror-hold metadata /);
    // An interrupt ends a hold: no SIGUSR2 needed.
    m.child.kill('SIGTERM');
    const r = await m.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/^test hook: OST_IMAGES_MIRROR_HOLD=1: a mirror stops before each phase until SIGUSR2, at most 600 s each \(for tests only\)$/m);
    expect(existsSync(path.join(repo, '.lock'))).toBe(false);
    expect((await cli(mirrorArgs('--to', local))).code).toBe(0);
  });

  it('a hold nobody ends fails loudly at its bound (OST_IMAGES_HOLD_SECONDS): exit 1 saying so, the lock released, the mirror unchanged', async () => {
    await publishNew();
    const before = topLinks(local);
    const r = await cli(mirrorArgs('--to', local), { OST_IMAGES_MIRROR_HOLD: '1', OST_IMAGES_HOLD_SECONDS: '1' });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`error: test hook OST_IMAGES_MIRROR_HOLD: no SIGUSR2 within 1 s at 'mirror-hold data ${local}' (OST_IMAGES_HOLD_SECONDS); giving up`);
    expect(existsSync(path.join(repo, '.lock'))).toBe(false);
    expect(topLinks(local)).toEqual(before);
    expect((await cli(mirrorArgs('--to', local))).code).toBe(0);
  });

  it('a .repo file listing a dead URL first and a live mirror second: dnf fails over and installs', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/`;
    const mirrorDir = path.join(daemonDir, 'ost');
    mkdirSync(mirrorDir, { recursive: true });
    const server = await serveDirectory(mirrorDir);
    servers.push(server);
    const r = await cli(['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo, '--url', dead, '--url', server.url]);
    expect(r.code, r.stderr).toBe(0);
    const repoFile = readFileSync(path.join(repo, 'ost-images.repo'), 'utf8');
    expect(repoFile).toMatch(new RegExp(`^baseurl=${dead} ${server.url}$`, 'm'));
    // A publish without --url keeps the list it finds.
    const again = await cli(['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo]);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(path.join(repo, 'ost-images.repo'), 'utf8')).toBe(repoFile);
    expect((await cli(mirrorArgs('--to', daemonUrl))).code).toBe(0);
    const reposDir = mkdtempSync(path.join(tmp, 'yum.repos.d-'));
    copyFileSync(path.join(mirrorDir, 'ost-images.repo'), path.join(reposDir, 'ost-images.repo'));
    const root = mkdtempSync(path.join(tmp, 'failover-root-'));
    const cache = mkdtempSync(path.join(tmp, 'failover-cache-'));
    server.mark();
    const base = ['-y', `--installroot=${root}`, '--releasever=ost', `--setopt=reposdir=${reposDir}`, `--setopt=cachedir=${cache}`, '--setopt=install_weak_deps=False'];
    await execFileP('dnf', [...base, 'makecache']);
    const pkg = readSnapshot(repo, servedStamp(repo)!).packages.find((p) => p.name.endsWith('-base'))!;
    await execFileP('dnf', [...base, 'install', pkg.name], { maxBuffer: 1 << 24 });
    const got = (await server.settledRequests()).filter((q) => q.status === 200).map((q) => q.path);
    expect(got).toContain('/repodata/repomd.xml');
    expect(got).toContain(`/packages/${pkg.file}`);
  }, 300_000);
});
