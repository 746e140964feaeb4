// Mirrors over ssh on the real tools: a real sshd on 127.0.0.1 (test/helpers/sshd.ts), reached
// as a user would reach a mirror host, `--to root@127.0.0.1:/dir` with the remote shell given by
// --rsh, by RSYNC_RSH, or with the key held by an ssh-agent. A first sync gives a mirror dnf
// installs from over HTTP; a publish synced later switches it; --verify passes and names a file
// damaged at the mirror host; a login refused before the switch leaves the mirror serving its
// previous snapshot; a mirror SIGKILLed mid-transfer leaves nothing running once run again;
// unusable destinations and an unreachable port are clear errors with the right exit code.
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { pidsWhere } from '../../src/core/proc.js';
import { packageLayers } from '../../src/package/package.js';
import { publish } from '../../src/publish/publish.js';
import { listSnapshots, servedStamp } from '../../src/repository/snapshot.js';
import { Store } from '../../src/store/store.js';
import { dnfArgs } from '../../src/tools/dnf.js';
import { cli, startCli, stopStartedClis, waitFor } from '../helpers/cli.js';
import { serveDirectory, type Server } from '../helpers/http.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { startSshAgent, startSshd, type SshAgent, type Sshd } from '../helpers/sshd.js';
import { fakeBuild, publishedDemoChain } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';
import { expectOneSnapshotAtATime, mirrorJson as mirrorJsonOf, packagesOf as packagesOfRepo, pollDuringHeldSync, sha, snapshotLists, topLinks, visibleFiles } from '../helpers/mirror.js';
import { freePort } from '../../src/consume/guest-ssh.js';

const execFileP = promisify(execFile);
const tmp = testTmp('mirror-ssh');
const store = new Store(path.join(tmp, 'store'));
const repo = path.join(tmp, 'repo');
/** The mirror host's side: its parent exists, the mirror directory itself is made by the first sync. */
const hostDir = path.join(tmp, 'host');
const remote = path.join(hostDir, 'ost-images');
const dest = `root@127.0.0.1:${remote}`;
let sshd: Sshd;
let agent: SshAgent | undefined;
let server: Server;
let ls: LayerSet;
let stamp = 20260401000000;

async function newEngine(): Promise<string> {
  await fakeBuild(store, 'demo', 'engine-installed', String(stamp++), store.current('demo', 'upgrade')!, 0x50 + (stamp % 16));
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

const packagesOf = (s: string) => packagesOfRepo(repo, s);
const mirrorJson = (args: string[], env: Record<string, string> = {}) => mirrorJsonOf(repo, args, env);

/** The mirror holds exactly the source's visible files, byte for byte, the same links, and one copy of each package. */
function expectIdentical(): void {
  expect(visibleFiles(remote).sort()).toEqual(visibleFiles(repo).sort());
  for (const f of visibleFiles(repo)) expect(sha(path.join(remote, f)), f).toBe(sha(path.join(repo, f)));
  expect(topLinks(remote)).toEqual(topLinks(repo));
  const s = servedStamp(repo)!;
  for (const p of packagesOf(s)) expect(statSync(path.join(remote, '.snapshots', s, 'packages', p)).ino, p).toBe(statSync(path.join(remote, 'packages', p)).ino);
}

/** The packages dnf lists from the mirror over HTTP, from an empty cache. */
async function dnfSees(): Promise<string[]> {
  const root = mkdtempSync(path.join(tmp, 'dnf-root-'));
  const cache = mkdtempSync(path.join(tmp, 'dnf-cache-'));
  try {
    const { stdout } = await execFileP('dnf', dnfArgs({ root, repoUrl: server.url, cacheDir: cache }, ['-q', 'repoquery', '--qf', '%{name}-%{version}-%{release}.%{arch}.rpm']), { maxBuffer: 1 << 24 });
    return stdout.split('\n').filter(Boolean).sort();
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  }
}

/** Our processes of a mirror over ssh: the local rsync, its ssh client, and the rsync server sshd started. */
function transferProcesses(): { rsync: number[]; ssh: number[]; server: number[] } {
  return {
    rsync: pidsWhere((argv) => path.basename(argv[0] ?? '') === 'rsync' && argv.includes(`${repo}/`)),
    ssh: pidsWhere((argv) => path.basename(argv[0] ?? '') === 'ssh' && argv.includes(String(sshd.port)) && argv.includes('127.0.0.1')),
    server: pidsWhere((argv) => path.basename(argv[0] ?? '') === 'rsync' && argv.includes('--server') && argv.some((a) => a.startsWith(remote))),
  };
}
const nothingRunning = () => Object.values(transferProcesses()).every((l) => l.length === 0);

beforeAll(async () => {
  const layersDir = writeLayerSet(demoSet({ isDefault: true })).layersDir;
  ls = loadLayerSet(layersDir, 'demo');
  await publishedDemoChain(ls, store, repo);
  await publish(repo, [await newEngine()]);
  mkdirSync(hostDir);
  sshd = await startSshd(path.join(tmp, 'sshd'));
}, 300_000);

afterAll(async () => {
  await stopStartedClis();
  server?.stop();
  await agent?.stop();
  for (const pid of transferProcesses().rsync) process.kill(pid, 'SIGKILL');
  await sshd?.stop();
  removeTree(tmp);
}, 300_000);

describe('ost-images mirror over ssh', () => {
  it('--rsh: a first sync makes a complete mirror (links, one copy of each package) that dnf installs from; --verify passes; a second run sends nothing', async () => {
    const r = await mirrorJson(['--to', dest, '--rsh', sshd.rsh]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.report.destinations.map((d) => [d.dest, d.kind])).toEqual([[dest, 'ssh']]);
    expect(r.report.destinations[0]!.phases!.map((p) => p.phase)).toEqual(['data', 'metadata', 'switch', 'delete']);
    expect(r.report.destinations[0]!.phases![0]!.files).toBeGreaterThanOrEqual(packagesOf(servedStamp(repo)!).length);
    // Through the server, not a local copy.
    expect(sshd.log()).toMatch(/Accepted publickey for root from 127\.0\.0\.1/);
    expectIdentical();

    server = await serveDirectory(remote);
    const root = mkdtempSync(path.join(tmp, 'install-root-'));
    const cache = mkdtempSync(path.join(tmp, 'install-cache-'));
    // The snapshot lists two builds of the layer: dnf takes the newer one.
    const engines = packagesOf(servedStamp(repo)!).filter((f) => f.startsWith('ost-images-demo-engine-installed-'));
    expect(engines).toHaveLength(2);
    await execFileP('dnf', dnfArgs({ root, repoUrl: server.url, cacheDir: cache }, ['install', 'ost-images-demo-engine-installed']), { maxBuffer: 1 << 24 });
    const installed = (await execFileP('rpm', ['--root', root, '-qa', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm\\n'])).stdout.split('\n').filter(Boolean);
    // The layer and the chain it requires, each a build the mirror's snapshot lists.
    expect(installed).toContain(engines.sort().at(-1));
    expect(installed.length).toBeGreaterThanOrEqual(3);
    for (const f of installed) expect(packagesOf(servedStamp(repo)!)).toContain(f);

    const v = await mirrorJson(['--to', dest, '--rsh', sshd.rsh, '--verify']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.report.destinations[0]!.verify).toEqual({ ok: true, differing: [], missing: [], extra: [] });
    const again = await mirrorJson(['--to', dest, '--rsh', sshd.rsh]);
    expect(again.code, again.stderr).toBe(0);
    expect([again.report.destinations[0]!.files, again.report.destinations[0]!.deleted]).toEqual([0, 0]);
  }, 300_000);

  it('RSYNC_RSH: a second publish, synced, switches the mirror: dnf sees the new snapshot, the retired one is gone', async () => {
    const before = servedStamp(repo)!;
    const oldest = listSnapshots(repo)[0]!;
    expect(await dnfSees()).toEqual(packagesOf(before));
    await publishNew();
    const after = servedStamp(repo)!;
    expect(listSnapshots(repo)).not.toContain(oldest);
    expect(existsSync(path.join(remote, '.snapshots', oldest))).toBe(true);
    const r = await cli(mirrorArgs('--to', dest), { RSYNC_RSH: sshd.rsh });
    expect(r.code, r.stderr).toBe(0);
    expect(servedStamp(remote)).toBe(after);
    expect(existsSync(path.join(remote, '.snapshots', oldest))).toBe(false);
    expectIdentical();
    expect(await dnfSees()).toEqual(packagesOf(after));
    expect(packagesOf(after)).not.toEqual(packagesOf(before));
  }, 300_000);

  it('a client polling the mirror with dnf during a sync over ssh (held at every phase boundary) sees exactly one snapshot each time and never fails a fetch', async () => {
    const before = servedStamp(repo)!;
    expect(servedStamp(remote)).toBe(before);
    const oldest = listSnapshots(repo)[0]!;
    await publishNew();
    const after = servedStamp(repo)!;
    expect(existsSync(path.join(remote, '.snapshots', oldest))).toBe(true);
    const r = await pollDuringHeldSync({ tmp, url: server.url, args: mirrorArgs('--to', dest, '--rsh', sshd.rsh, '--json'), lists: snapshotLists(repo, before, after) });
    expectOneSnapshotAtATime(r, before, after, dest);
    expect(existsSync(path.join(remote, '.snapshots', oldest))).toBe(false);
    expectIdentical();
  }, 600_000);

  it('the key in an ssh-agent (SSH_AUTH_SOCK) is used; without the agent the login is refused: exit 1 with ssh\'s own words', async () => {
    agent = await startSshAgent(mkdtempSync(path.join(tmp, 'agent-')), sshd.clientKey);
    const ok = await mirrorJson(['--to', dest, '--rsh', sshd.rshWithoutKey, '--verify'], { SSH_AUTH_SOCK: agent.socket });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.report.ok).toBe(true);
    const refused = await cli(mirrorArgs('--to', dest, '--rsh', sshd.rshWithoutKey, '--verify'), { SSH_AUTH_SOCK: '' });
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`cannot list mirror ${dest.replace(/\./g, '\\.')} \\(rsync exit [0-9]+\\): .*Permission denied \\(publickey`));
  });

  it('--verify names a file damaged at the mirror host (size and time kept): exit 1; --checksum repairs it', async () => {
    const s = servedStamp(repo)!;
    const damaged = packagesOf(s)[0]!;
    const file = path.join(remote, 'packages', damaged);
    const st = statSync(file);
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 1000);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, 1000);
    closeSync(fd);
    utimesSync(file, st.atime, st.mtime);
    const v = await mirrorJson(['--to', dest, '--rsh', sshd.rsh, '--verify']);
    expect(v.code, v.stderr).toBe(1);
    expect(v.report.destinations[0]!.verify!.differing).toContain(`packages/${damaged}`);
    expect(v.report.destinations[0]!.verify!.missing).toEqual([]);
    expect(v.report.destinations[0]!.verify!.extra).toEqual([]);
    expect(v.stderr).toContain(`mirror ${dest}: differs:  packages/${damaged}`);
    // A plain sync compares sizes and times: it would not see the damage.
    const fix = await cli(mirrorArgs('--to', dest, '--rsh', sshd.rsh, '--checksum'));
    expect(fix.code, fix.stderr).toBe(0);
    expect(sha(file)).toBe(sha(path.join(repo, 'packages', damaged)));
    expect((await mirrorJson(['--to', dest, '--rsh', sshd.rsh, '--verify'])).code).toBe(0);
  });

  it('the login refused between metadata and the switch: exit 1, the mirror still serves its previous snapshot whole; the next run switches', async () => {
    const before = servedStamp(remote)!;
    const linksBefore = topLinks(remote);
    await publishNew();
    const after = servedStamp(repo)!;
    const keys = readFileSync(sshd.authorizedKeys);
    const m = startCli(mirrorArgs('--to', dest, '--rsh', sshd.rsh), { OST_IMAGES_MIRROR_HOLD: '1' });
    try {
      await m.until(/mirror-hold data /);
      m.child.kill('SIGUSR2');
      await m.until(/mirror-hold metadata /);
      m.child.kill('SIGUSR2');
      await m.until(/mirror-hold switch /);
      // sshd reads the AuthorizedKeysFile at every login: the switch's connection is refused.
      writeFileSync(sshd.authorizedKeys, '');
      m.child.kill('SIGUSR2');
      const r = await m.done;
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/Permission denied \(publickey/);
    } finally {
      writeFileSync(sshd.authorizedKeys, keys);
    }
    // The new snapshot arrived (data, metadata) but nothing names it: the old one is served.
    expect(existsSync(path.join(remote, '.snapshots', after, 'repodata', 'repomd.xml'))).toBe(true);
    expect(topLinks(remote)).toEqual(linksBefore);
    expect(servedStamp(remote)).toBe(before);
    expect(await dnfSees()).toEqual(packagesOf(before));
    const again = await cli(mirrorArgs('--to', dest, '--rsh', sshd.rsh));
    expect(again.code, again.stderr).toBe(0);
    expect(servedStamp(remote)).toBe(after);
    expectIdentical();
    expect(await dnfSees()).toEqual(packagesOf(after));
  }, 300_000);

  it('bad input: a destination that cannot be a directory, a missing parent, a directory that is no mirror (exit 2), an unreachable port (exit 1); nothing written, the mirror unchanged', async () => {
    writeFileSync(path.join(hostDir, 'plain-file'), 'x');
    const linksBefore = topLinks(remote);
    const dead = await freePort();
    const deadRsh = sshd.rsh.replace(`-p ${sshd.port}`, `-p ${dead}`);
    // The destination as messages quote it: cut after 60 characters, its length said.
    const cut = `--to: 'root@127\\.0\\.0\\.1:[^']*(?:' \\([0-9]+ characters\\)|')`;
    const cases: [string[], number, RegExp][] = [
      [['--to', `root@127.0.0.1:${hostDir}/plain-file/sub`, '--rsh', sshd.rsh], 2, new RegExp(`${cut} cannot be used as a mirror directory: rsync: \\[sender\\] change_dir ".*/host/plain-file/sub" failed: Not a directory`)],
      [['--to', `root@127.0.0.1:${hostDir}/no/such/dir`, '--rsh', sshd.rsh], 2, new RegExp(`${cut}: the parent directory root@127\\.0\\.0\\.1:${hostDir}/no/such does not exist`)],
      // The mirror's parent: not empty, and holds no repository.
      [['--to', `root@127.0.0.1:${hostDir}`, '--rsh', sshd.rsh], 2, new RegExp(`${cut} is neither empty nor a mirror an earlier \`ost-images mirror\` wrote`)],
      [['--to', dest, '--rsh', ''], 2, /--rsh: is empty/],
      [['--to', path.join(tmp, 'never-written'), '--rsh', sshd.rsh], 2, /--rsh: only \[user@\]host:path mirrors use a remote shell/],
      // rsync's own code for a dead remote shell is 255 or 12 (whichever of its checks sees the closed
      // pipe first): ssh's line is what says why.
      [['--to', dest, '--rsh', deadRsh], 1, new RegExp(`cannot list mirror root@127\\.0\\.0\\.1:.* \\(rsync exit [0-9]+\\): ssh: connect to host 127\\.0\\.0\\.1 port ${dead}: Connection refused`)],
      [['--to', dest], 1, /cannot list mirror/], // RSYNC_RSH (below) names the dead port
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(mirrorArgs(...args), args.includes('--rsh') ? {} : { RSYNC_RSH: deadRsh });
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(message);
      // One clear line, not rsync's argv and a stack.
      expect(r.stderr, r.stderr).not.toMatch(/--out-format|at .*\.js:/);
    }
    expect(readdirSync(hostDir).sort()).toEqual(['ost-images', 'plain-file']);
    expect(existsSync(path.join(tmp, 'never-written'))).toBe(false);
    expect(topLinks(remote)).toEqual(linksBefore);
    expect((await mirrorJson(['--to', dest, '--rsh', sshd.rsh, '--verify'])).code).toBe(0);
  }, 300_000);

  it('SIGKILLed mid-transfer, then run again: the orphaned rsync, its ssh and the rsync on the mirror host all end; it completes, --verify passes', async () => {
    await publishNew();
    const linksBefore = topLinks(remote);
    // A 48 MiB package first in the pool's order, sent at 2 MiB/s: the killed mirror's rsync is
    // still sending it when the next run starts on any machine (the assertions hold either way).
    const big = path.join(repo, 'packages', 'aaa-big-1-1.noarch.rpm');
    const fd = openSync(big, 'w');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 48; i++) {
      chunk.fill(i);
      writeSync(fd, chunk);
    }
    closeSync(fd);
    try {
      const killed = await cli(mirrorArgs('--to', dest, '--rsh', sshd.rsh, '--bwlimit', '2048'), { OST_IMAGES_FAULT: 'mirror:during-data' });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      expect(topLinks(remote)).toEqual(linksBefore);
      // The hook stopped the transfer's rsync before the kill: its orphans are all still there,
      // the local rsync, its ssh client and the rsync sshd started on the mirror host.
      const orphans = transferProcesses();
      expect(orphans.rsync.length, JSON.stringify(orphans)).toBeGreaterThan(0);
      expect(orphans.ssh.length, JSON.stringify(orphans)).toBeGreaterThan(0);
      expect(orphans.server.length, JSON.stringify(orphans)).toBeGreaterThan(0);
      const again = await mirrorJson(['--to', dest, '--rsh', sshd.rsh]);
      expect(again.code, again.stderr).toBe(0);
      // The remote rsync ends when its connection does: nothing announces it to us.
      await waitFor(nothingRunning, 300_000, `the killed mirror's processes to end: ${JSON.stringify(transferProcesses())}`);
      // Each of them is gone, not only some.
      const left = transferProcesses();
      for (const pid of [...orphans.rsync, ...orphans.ssh, ...orphans.server]) expect([...left.rsync, ...left.ssh, ...left.server]).not.toContain(pid);
      // Its temporary files at the mirror host are gone too (removed by the delete phase, or by
      // the remote rsync itself as it ended).
      expect(readdirSync(path.join(remote, 'packages')).filter((f) => f.startsWith('.'))).toEqual([]);
      expect(topLinks(remote)).toEqual(topLinks(repo));
      expect((await mirrorJson(['--to', dest, '--rsh', sshd.rsh, '--verify'])).code).toBe(0);
    } finally {
      rmSync(big, { force: true });
    }
    expect((await cli(mirrorArgs('--to', dest, '--rsh', sshd.rsh))).code).toBe(0);
    expect(nothingRunning()).toBe(true);
  }, 600_000);
});
