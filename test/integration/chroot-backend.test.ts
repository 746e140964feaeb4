// The chroot backend on a real disk (a busybox root), through the real CLI: a layer builds, and
// success, a failing step, SIGTERM, Ctrl-C and SIGKILL all end with no mount, loop device,
// qemu-storage-daemon, lock or half-built image left behind (SIGKILL's leftovers are reclaimed by
// the next run).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_SCHEMA, type BuildManifest } from '../../src/store/manifest.js';
import { attachDisk, mountImageReadOnly, mountRoot, rootDevice } from '../../src/builder/disk.js';
import { walkTree } from '../../src/reproduce/tree.js';
import { withScope } from '../../src/core/scope.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { Store } from '../../src/store/store.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { testTmp, removeTree } from '../helpers/tmp.js';
import { cli, startCli, stopStartedClis } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { fakeBusyboxBase } from '../helpers/tiny.js';

const tmp = testTmp('chroot');
const storeDir = path.join(tmp, 'store');
const store = new Store(storeDir);
const env = { OST_IMAGES_KVM: '0' };
let layersDir: string;

const files = {
  'set.yaml': 'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}\npackage: {prefix: ost-images}\n',
  'base/layer.yaml': 'base:\n  mmdebstrap: {packages: [busybox]}\n',
  'work/layer.yaml': 'parent: base\nsteps:\n  - upload: {from: motd, to: /etc/motd, mode: "0600"}\n  - run: work.sh\n',
  'work/motd': 'hello from the work layer\n',
  'work/work.sh': '#!/bin/sh\nset -e\necho "ran as $(id -u) in $(cat /etc/os-release)" > /root/work-ran\n',
  'slow/layer.yaml': 'parent: base\nsteps:\n  - run: slow.sh\n',
  // The tests signal a slow build once its step has printed 'started' (seen with --debug): the
  // step must outlast that whatever the machine's speed; an hour only bounds a leak.
  'slow/slow.sh': '#!/bin/sh\necho started\nsleep 3600\n',
  'fail/layer.yaml': 'parent: base\nsteps:\n  - run: fail.sh\n',
  'pair/layer.yaml': 'parent: base\nsteps:\n  - run: pair.sh\n',
  // Holds the build until the test opens the gate (writes /root/gate-open into the mounted guest),
  // so a second build started meanwhile finds the set locked, however long it takes to start.
  'pair/pair.sh': '#!/bin/sh\ntouch /root/gate-waiting\necho waiting at the gate\nwhile [ ! -e /root/gate-open ]; do sleep 1; done\nrm -f /root/gate-waiting /root/gate-open\necho built > /root/pair\n',
  'fail/fail.sh': '#!/bin/sh\necho "oops: the step failed" >&2\nexit 3\n',
  // The stub dpkg-query lists /var/lib/ost-test/packages: "installing" is appending to it.
  'pkgs/layer.yaml': 'parent: base\nsteps:\n  - install: [hello]\n  - run: pkgs.sh\n',
  'pkgs/pkgs.sh': '#!/bin/sh\necho "hello 2.10-3" >> /var/lib/ost-test/packages\nsed -i "s/^base-files .*/base-files 12.4+deb12u6/" /var/lib/ost-test/packages\n',
  'noop/layer.yaml': 'parent: base\nsteps:\n  - install: [already-there]\n',
  // A step that leaves what no image may carry, all of which the seal knows how to take out.
  'dirty/layer.yaml': 'parent: base\nsteps:\n  - run: dirty.sh\n',
  'dirty/dirty.sh': [
    '#!/bin/sh',
    'set -e',
    'mkdir -p /etc/ssh /var/log/app /var/lib/systemd /var/cache/ldconfig',
    'echo "-----BEGIN OPENSSH PRIVATE KEY-----" > /etc/ssh/ssh_host_ed25519_key',
    'echo "ssh-ed25519 AAAA root@build" > /etc/ssh/ssh_host_ed25519_key.pub',
    'echo 0123456789abcdef0123456789abcdef > /etc/machine-id',
    'echo seed > /var/lib/systemd/random-seed',
    'echo "the build was here" > /var/log/app/app.log',
    'echo cache > /var/cache/ldconfig/aux-cache',
    'echo "echo hello" > /root/.bash_history',
    'echo "$SOURCE_DATE_EPOCH" > /root/sde',
    'echo kept > /etc/app.conf',
    '',
  ].join('\n'),
  // A private key made where no rule knows it: the build must fail, naming it.
  'leak/layer.yaml': 'parent: base\nsteps:\n  - run: leak.sh\n',
  'leak/leak.sh': '#!/bin/sh\nmkdir -p /etc/myapp\necho "-----BEGIN RSA PRIVATE KEY-----" > /etc/myapp/server.key\necho MIIE >> /etc/myapp/server.key\n',
};

/** What a build says when another one holds the set's lock. */
const WAITING_FOR_FIRST = /waiting for process [0-9]+(?: on host [^,]+)?, which is working on set 'tiny'/;

/** A step's own output line, as the build shows it with --debug. */
const STEP_STARTED = /\| started$/m;

/** Where the running build has mounted the guest's root (the mount under the store the gate file is in). */
function guestRoot(): string {
  const roots = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => !!mp && mp.startsWith(storeDir) && existsSync(path.join(mp, 'root', 'gate-waiting')));
  expect(roots).toHaveLength(1);
  return roots[0]!;
}

const build = (layer: string) => ['build', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir, '--backend', 'chroot', '--layer', layer];

function leftovers(): string[] {
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp?.startsWith(storeDir)) found.push(`mount ${mp}`);
  }
  const loops = JSON.parse(execFileSync('losetup', ['--list', '--json', '--output', 'NAME,BACK-FILE']).toString() || '{"loopdevices":[]}') as {
    loopdevices: { name: string; 'back-file': string | null }[];
  };
  for (const l of loops.loopdevices) if (l['back-file']?.startsWith(storeDir)) found.push(`loop ${l.name}`);
  for (const pid of readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('qemu-storage-daemon') && cmd.includes(storeDir)) found.push(`daemon ${pid}`);
    } catch {
      // gone
    }
  }
  if (existsSync(store.tmpDir())) for (const d of readdirSync(store.tmpDir())) found.push(`work dir ${d}`);
  for (const f of readdirSync(store.imagesDir('tiny'))) if (f.includes('partial')) found.push(`partial ${f}`);
  if (existsSync(path.join(storeDir, 'tiny', 'lock'))) found.push('lock');
  return found;
}

beforeAll(async () => {
  layersDir = writeLayerSet(files, 'tiny').layersDir;
  const work = mkdtempSync(path.join(tmp, 'mk-'));
  await fakeBusyboxBase(store, loadLayerSet(layersDir, 'tiny'), work);
  rmSync(work, { recursive: true });
});

afterAll(async () => {
  await stopStartedClis();
  removeTree(tmp);
}, 300_000);

describe('chroot backend', () => {
  it('builds a layer as an overlay on its parent, running the steps inside the guest', async () => {
    const r = await cli(build('work'), env);
    expect(r.stderr).toContain('work: step 2/2: run work.sh');
    expect(r.code, r.stderr).toBe(0);
    expect(leftovers()).toEqual([]);
    const rec = store.current('tiny', 'work')!;
    expect(rec.parent).toMatchObject({ layer: 'base', image: 'tiny-base-12-20260101000000.qcow2' });
    const chain = await qemuImg.chain(store.imagePath('tiny', rec.image));
    expect(chain[0]!['backing-filename']).toBe('tiny-base-12-20260101000000.qcow2');
    // Read the result back through the same machinery.
    await withScope(async (scope) => {
      const w = mkdtempSync(path.join(tmp, 'read-'));
      const ro = path.join(w, 'check.qcow2');
      await qemuImg.create(ro, { backing: store.imagePath('tiny', rec.image) });
      const disk = await attachDisk(scope, ro, w);
      const root = await mountRoot(scope, rootDevice(disk), w);
      expect(readFileSync(path.join(root, 'etc/motd'), 'utf8')).toBe('hello from the work layer\n');
      expect(readFileSync(path.join(root, 'root/work-ran'), 'utf8')).toBe('ran as 0 in ID=busybox\n');
      // Nothing of the build machinery stays in the image.
      expect(existsSync(path.join(root, 'usr/sbin/policy-rc.d'))).toBe(false);
      expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
    });
  });

  it('records the guest\'s package list and its diff against the parent; ships both in the RPM; `diff` prints it', async () => {
    const r = await cli(build('pkgs'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('pkgs: packages: 3 installed; 1 added, 1 upgraded, 0 removed');
    const rec = store.current('tiny', 'pkgs')!;
    expect(rec.packages).toMatchObject({ count: 3, added: 1, upgraded: 1, removed: 0, downgraded: 0 });
    expect(readFileSync(store.imagePath('tiny', rec.packages!.list), 'utf8')).toBe('base-files 12.4+deb12u6\nbusybox 1:1.35.0-4+b3\nhello 2.10-3\n');
    const d = await cli(['diff', 'pkgs', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`pkgs (${rec.image}):\n  packages: 1 added, 1 upgraded, 0 removed, against base 12-20260101000000\n  + hello 2.10-3\n  ~ base-files 12.4+deb12u5 -> 12.4+deb12u6\n`);
    const p = await cli(['package', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir, '--layer', 'pkgs', '--json']);
    expect(p.code, p.stderr).toBe(0);
    const rpm = (JSON.parse(p.stdout) as { rpm: string }[])[0]!.rpm;
    const files = execFileSync('rpm', ['-qlp', rpm]).toString().split('\n');
    expect(files).toContain(`/usr/share/ost-images/${rec.packages!.list}`);
    expect(files).toContain(`/usr/share/ost-images/${rec.packages!.diff}`);
    // The build manifest, rewritten by package, validates against its schema and tells the truth.
    const m = JSON.parse(readFileSync(path.join(storeDir, 'tiny', 'manifest.json'), 'utf8')) as BuildManifest;
    const validate = new Ajv({ allErrors: true, strict: true }).compile(MANIFEST_SCHEMA);
    expect(validate(m), JSON.stringify(validate.errors)).toBe(true);
    const entry = m.layers.find((l) => l.layer === 'pkgs')!;
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(entry.image.sha256).toBe(sha(store.imagePath('tiny', rec.image)));
    expect(entry.package).toMatchObject({ name: 'ost-images-tiny-pkgs', file: path.basename(rpm), sha256: sha(rpm) });
    expect(entry.parent).toEqual({ layer: 'base', versionRelease: '12-20260101000000', image: 'tiny-base-12-20260101000000.qcow2' });
    expect(entry.packages).toMatchObject({ added: 1, upgraded: 1, flagged: null });
    expect(m.toolchain.tools['qemu-img']).toMatch(/^qemu-img version /);
  });

  it('builds a throw-away layer with local package files on any layer (--with-packages), packaged on request', async () => {
    const debs = mkdtempSync(path.join(tmp, 'debs-'));
    writeFileSync(path.join(debs, 'mine_1.0_all.deb'), 'not really a deb, the guest apt-get is a stub');
    writeFileSync(path.join(debs, 'README'), 'ignored');
    const custom = ['build', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir, '--backend', 'chroot', '--with-packages', debs, '--on', 'work', '--name', 'mine'];
    const r = await cli([...custom, '--package', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('mine: step 1/1: install local mine_1.0_all.deb');
    const out = JSON.parse(r.stdout) as { layers: { layer: string; action: string }[]; package: { rpm: string } };
    expect(out.layers.map((l) => `${l.layer}:${l.action}`)).toEqual(['base:reused', 'work:reused', 'mine:built']);
    const rec = store.current('tiny', 'mine')!;
    expect(rec.parent!.layer).toBe('work');
    expect(rec.packages).toMatchObject({ added: 1 });
    expect(readFileSync(store.imagePath('tiny', rec.packages!.list), 'utf8')).toContain('local-ost-images-local-0 1.0\n');
    expect(execFileSync('rpm', ['-qp', '--requires', out.package.rpm]).toString()).toContain(`ost-images-tiny-work = 12-${store.current('tiny', 'work')!.release}`);
    // Same packages again: nothing to build. Changed packages: a new build.
    expect((JSON.parse((await cli([...custom, '--json'], env)).stdout) as { layers: { action: string }[] }).layers[2]!.action).toBe('reused');
    writeFileSync(path.join(debs, 'mine_1.0_all.deb'), 'rebuilt');
    expect((JSON.parse((await cli([...custom, '--json'], env)).stdout) as { layers: { action: string }[] }).layers[2]!.action).toBe('built');
    expect(leftovers()).toEqual([]);
  });

  it.each([
    [['--with-packages', '/nonexistent', '--on', 'work', '--name', 'x'], "--with-packages: '/nonexistent' is not a directory"],
    [['--with-packages', '.', '--on', 'nope', '--name', 'x'], "--on: set 'tiny' has no layer 'nope'"],
    [['--with-packages', '.', '--on', 'work', '--name', 'work'], "--name: 'work' is a layer of set 'tiny' already"],
    [['--with-packages', '.', '--on', 'work'], '--with-packages, --on and --name go together'],
    [['--with-packages', 'test', '--on', 'work', '--name', 'x'], '--with-packages: no .deb files in'],
  ])('refuses bad custom-layer arguments with exit code 2: %j', async (args, message) => {
    const r = await cli(['build', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir, ...args], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('flags a layer whose package step changed no package', async () => {
    const r = await cli(build('noop'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("warning: noop: the layer's install (step 1) changed no package");
    expect(store.current('tiny', 'noop')!.packages!.flagged).toBe("the layer's install (step 1) changed no package");
  });

  it("seals the layer: host keys, machine-id, seeds, logs, caches and history out; every time at most the layer's SOURCE_DATE_EPOCH, which its steps see", async () => {
    const r = await cli(build('dirty'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/dirty: sealed: [0-9]+ per-machine or build-time file\(s\) taken out/);
    expect(leftovers()).toEqual([]);
    const rec = store.current('tiny', 'dirty')!;
    const epoch = rec.manifest!.sourceDateEpoch;
    await withScope(async (scope) => {
      const root = await mountImageReadOnly(scope, store.imagePath('tiny', rec.image), mkdtempSync(path.join(tmp, 'read-')));
      const gone = ['etc/ssh/ssh_host_ed25519_key', 'etc/ssh/ssh_host_ed25519_key.pub', 'var/lib/systemd/random-seed', 'var/cache/ldconfig/aux-cache', 'root/.bash_history'];
      expect(gone.filter((f) => existsSync(path.join(root, f)))).toEqual([]);
      expect(readFileSync(path.join(root, 'etc/machine-id'), 'utf8')).toBe('');
      // A log stays, empty, for the daemon that writes it; the build's config stays as it was.
      expect(readFileSync(path.join(root, 'var/log/app/app.log'), 'utf8')).toBe('');
      expect(readFileSync(path.join(root, 'etc/app.conf'), 'utf8')).toBe('kept\n');
      expect(readFileSync(path.join(root, 'root/sde'), 'utf8')).toBe(`${epoch}\n`);
      const tree = await walkTree(root);
      const newer = [...tree].filter(([, e]) => BigInt(e.mtime) > BigInt(epoch) * 1_000_000_000n).map(([p]) => p);
      expect(newer).toEqual([]);
      expect(tree.get('/etc/app.conf')!.mtime).toBe(`${epoch}000000000`);
    });
  });

  it('fails a layer whose step leaves a private key no rule knows, naming the file, and leaves nothing behind', async () => {
    const r = await cli(build('leak'), env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("leak: the image would carry what no image may (see docs/reproducible.md, \"Nothing per machine, nothing secret\"):\n  /etc/myapp/server.key holds a private key made during the build");
    expect(leftovers()).toEqual([]);
    expect(store.current('tiny', 'leak')).toBeUndefined();
  });

  it('reports a failing step with its output, exit code 1, and leaves nothing behind', async () => {
    const r = await cli(build('fail'), env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/chroot exited with code 3: .* \/bin\/sh \/tmp\/ost-images-step-0\.sh/);
    expect(r.stderr).toContain('oops: the step failed');
    expect(leftovers()).toEqual([]);
    expect(store.current('tiny', 'fail')).toBeUndefined();
  });

  it.each([
    ['SIGTERM', false],
    ['SIGINT (Ctrl-C: the whole process group)', true],
  ])('releases everything on %s mid-step and exits 130', async (_name, group) => {
    // --debug shows the step's own output: once it has printed 'started', the step runs in the
    // chroot (no fixed sleep hoping it got there).
    const run = startCli([...build('slow'), '--debug'], env);
    await run.until(STEP_STARTED);
    expect(leftovers().some((l) => l.startsWith('daemon'))).toBe(true);
    if (group) process.kill(-run.child.pid!, 'SIGINT');
    else run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.stderr).toMatch(/received: stopping and cleaning up/);
    expect(r.code).toBe(130);
    expect(leftovers()).toEqual([]);
    expect(store.current('tiny', 'slow')).toBeUndefined();
  });

  it('releases everything on SIGTERM even when whoever read its log has gone (writes to stderr fail with EPIPE)', async () => {
    // A CI runner or a terminal that went away first: the build's progress lines then hit a closed
    // pipe while it cleans up. That must not end it before the clean-up is done.
    const run = startCli([...build('slow'), '--debug'], env);
    await run.until(STEP_STARTED);
    run.child.stderr!.destroy();
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(leftovers()).toEqual([]);
    expect(store.current('tiny', 'slow')).toBeUndefined();
  });

  it('reclaims what a SIGKILLed build leaked, then builds', async () => {
    // Killed once the step runs in the chroot, so its sleep is there to be reclaimed.
    const run = startCli([...build('slow'), '--debug'], env);
    await run.until(STEP_STARTED);
    run.child.kill('SIGKILL');
    await run.done;
    expect(store.current('tiny', 'slow')).toBeUndefined();
    const leaked = leftovers();
    expect(leaked.filter((l) => /^(mount|loop|daemon|partial|lock)/.test(l)).length).toBeGreaterThan(3);
    // The chroot's sleep survives its killed parent; the next run stops it too.
    const r = await cli(build('work'), env);
    expect(r.stderr).toContain('reclaiming leftovers of a killed run');
    expect(r.stderr).toContain('removed the stale lock of process');
    expect(r.code, r.stderr).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it('a second build of the same layer started meanwhile waits, then reuses the first one\'s result', async () => {
    // The first build's step waits at a gate; the gate opens only once the second build says it
    // is waiting for the first. (It used to be a 3-second step, lost by a second build slower to
    // start than that.)
    const first = startCli([...build('pair'), '--json', '--debug'], env);
    await first.until(/\| waiting at the gate$/m);
    const second = startCli([...build('pair'), '--json'], env);
    await second.until(WAITING_FOR_FIRST);
    writeFileSync(path.join(guestRoot(), 'root', 'gate-open'), '');
    const [a, b] = await Promise.all([first.done, second.done]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(WAITING_FOR_FIRST);
    const actions = (r: typeof a) => (JSON.parse(r.stdout) as { layers: { layer: string; action: string }[] }).layers.map((l) => `${l.layer}:${l.action}`);
    expect(actions(a)).toEqual(['base:reused', 'pair:built']);
    expect(actions(b)).toEqual(['base:reused', 'pair:reused']);
    expect(store.builds('tiny', 'pair')).toHaveLength(1);
    expect(leftovers()).toEqual([]);
  });

  it('verify --rebuild of a layer: identical; SIGKILLed mid-rebuild, its nested scratch store is reclaimed by the next run', async () => {
    const ok = await cli(['verify', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir, '--backend', 'chroot', '--rebuild', 'work', '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as { status: string }[])[0]!.status).toBe('identical');
    // The pair layer's step waits at its gate, which nobody opens this time.
    const run = startCli(['verify', '--set', 'tiny', '--layers-dir', layersDir, '--store', storeDir, '--backend', 'chroot', '--rebuild', 'pair', '--debug'], env);
    await run.until(/\| waiting at the gate$/m);
    run.child.kill('SIGKILL');
    await run.done;
    const leaked = leftovers();
    expect(leaked.filter((l) => /^(mount|loop|daemon)/.test(l)).length, leaked.join('\n')).toBeGreaterThan(3);
    const r = await cli(build('work'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/reclaiming leftovers of a killed run in .*verify-rebuild-pair\./);
    expect(leftovers()).toEqual([]);
  });
});
