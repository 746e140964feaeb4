// Reproducible layers on a small real set (a mmdebstrap base with a kernel, GRUB and sshd, a middle
// layer that installs a package and adds a user, two leaves), through the real CLI, from a Debian
// mirror frozen for the run (test/helpers/mirror-cache.ts: every build sees the same state):
//   - built into store A, packaged and published; then every layer built again into an empty
//     store C from its recorded inputs (verify --rebuild, parents from A's repository): the same
//     file tree in every layer, mtimes included; the same base qcow2, byte for byte; the same
//     package payloads;
//   - one byte of a leaf's input changed: that leaf alone is built again, and its tree differs from
//     the old build in exactly that file;
//   - a file changed inside an image after its build: verify --rebuild names it, exit 1; and a
//     build whose definitions moved on is not checked, exit 2.
import { chmodSync, cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachDisk, mountImageReadOnly, mountRoot, rootDevice } from '../../src/builder/disk.js';
import type { ReproVerdict } from '../../src/jobs/reproduce.js';
import { compareTrees } from '../../src/reproduce/compare.js';
import { walkTree } from '../../src/reproduce/tree.js';
import { withScope } from '../../src/core/scope.js';
import { Store } from '../../src/store/store.js';
import { cli } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { startMirrorCache, type MirrorCache } from '../helpers/mirror-cache.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const MIN = 60_000;
const tmp = testTmp('repro');
const A = path.join(tmp, 'store-a');
const C = path.join(tmp, 'store-c');
const repoA = path.join(tmp, 'repo-a');
const storeA = new Store(A);
const env = { OST_IMAGES_KVM: '0' };
let mirror: MirrorCache;
let layersDir: string;
let setDir: string;

function files(mirrorUrl: string): Record<string, string> {
  return {
    'set.yaml': [
      'description: A small set built twice',
      `distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "${mirrorUrl}"}`,
      'image: {size: 2G}',
      'package: {prefix: ost-images}',
      'ssh_key: {file: root_key}',
      '',
    ].join('\n'),
    'base/layer.yaml': [
      'base:',
      '  mmdebstrap:',
      '    variant: minbase',
      '    suites: [bookworm]',
      '    components: [main]',
      // A kernel (its initramfs), GRUB on the disk, sshd (host keys) and ssl-cert (the snakeoil key).
      '    packages: [systemd-sysv, linux-image-cloud-amd64, grub-pc, openssh-server, ssl-cert]',
      '  hostname: repro',
      `upstream: [${mirrorUrl}/dists/bookworm/InRelease]`,
      '',
    ].join('\n'),
    'mid/layer.yaml': 'parent: base\nsteps:\n  - install: [hello]\n  - run: mid.sh\n',
    // A user (its shadow entry has a date), a file, and a log line, as a real layer leaves them.
    'mid/mid.sh': '#!/bin/sh\nset -e\nuseradd --create-home app\necho "mid layer" > /etc/mid.conf\necho "mid ran" >> /var/log/mid.log\n',
    'a/layer.yaml': 'parent: mid\nsteps:\n  - upload: {from: motd, to: /etc/motd}\n',
    'a/motd': 'Welcome to leaf a.\n',
    'b/layer.yaml': 'parent: mid\nsteps:\n  - run: b.sh\n',
    'b/b.sh': '#!/bin/sh\nset -e\nmkdir -p /srv\necho "leaf b" > /srv/b.txt\n',
  };
}

const args = (store: string, dir = layersDir) => ['--set', 'repro', '--layers-dir', dir, '--store', store];

async function ok(a: string[]): Promise<string> {
  const r = await cli(a, env);
  expect(r.code, `ost-images ${a.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

async function treeOf(image: string) {
  return withScope(async (scope) => walkTree(await mountImageReadOnly(scope, image, mkdtempSync(path.join(tmp, 'mnt-')))));
}

beforeAll(async () => {
  mirror = await startMirrorCache({ debian: 'http://deb.debian.org/debian' }, path.join(tmp, 'mirror'));
  ({ layersDir, setDir } = writeLayerSet(files(`${mirror.url}/debian`), 'repro'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@repro', '-f', path.join(setDir, 'root_key')]);
  await ok(['build', ...args(A), '--backend', 'chroot']);
  await ok(['package', ...args(A)]);
  await ok(['publish', ...args(A), '--repo', repoA]);
}, 30 * MIN);

afterAll(async () => {
  await mirror?.stop();
  removeTree(tmp);
});

describe('reproducible layers', () => {
  let verdicts: ReproVerdict[];

  it('every layer built again from its recorded inputs into an empty store: the same trees, base bytes and package payloads', async () => {
    const r = await cli(['verify', ...args(C), '--rebuild', 'base', 'mid', 'a', 'b', '--cache-repo', repoA, '--backend', 'chroot', '--json'], env);
    verdicts = JSON.parse(r.stdout) as ReproVerdict[];
    expect(r.code, `${r.stderr}\n${JSON.stringify(verdicts, null, 1)}`).toBe(0);
    expect(verdicts.map((v) => [v.layer, v.status, v.source])).toEqual([
      ['base', 'identical', 'repository'],
      ['mid', 'identical', 'repository'],
      ['a', 'identical', 'repository'],
      ['b', 'identical', 'repository'],
    ]);
    for (const v of verdicts) {
      // Every path, type, mode, owner, link target, content and mtime.
      expect(v.tree!.identical, v.layer).toBe(v.tree!.entries);
      expect(v.tree!.entries, v.layer).toBeGreaterThan(1000);
    }
    // The base: the same qcow2 bytes, and packages holding the same files under the same names,
    // compressed to the same bytes.
    const base = verdicts[0]!;
    expect(base.image!.bytesIdentical).toBe(true);
    expect(base.image!.guaranteed).toBe(true);
    expect(base.image!.sha256).toBe(base.image!.rebuiltSha256);
    expect(base.payload!.files).toBe(base.payload!.rebuiltFiles);
    expect(base.payload!.digest).toBe(base.payload!.rebuiltDigest);
    // Above it the kernel wrote the file systems: the trees are the same, some blocks are not.
    for (const v of verdicts.slice(1)) expect(v.image!.guaranteed, v.layer).toBe(false);
    // The store's copy is the repository's too (nothing was rebuilt into it).
    expect(new Store(C).current('repro', 'base')).toBeUndefined();
  }, 30 * MIN);

  it("one byte of a leaf's input changed: that leaf alone is built again, and its tree differs in exactly that file", async () => {
    const edited = path.join(tmp, 'layers-edited');
    cpSync(layersDir, edited, { recursive: true });
    writeFileSync(path.join(edited, 'repro', 'a', 'motd'), 'Welcome to leaf A.\n');
    const before = storeA.current('repro', 'a')!;
    const out = JSON.parse(await ok(['build', ...args(A, edited), '--backend', 'chroot', '--json'])) as { layers: { layer: string; action: string }[] };
    expect(out.layers.map((l) => `${l.layer}:${l.action}`)).toEqual(['base:reused', 'mid:reused', 'a:built', 'b:reused']);
    const after = storeA.current('repro', 'a')!;
    const diff = compareTrees(await treeOf(storeA.imagePath('repro', before.image)), await treeOf(storeA.imagePath('repro', after.image)));
    expect(diff.differing.map((d) => [d.path, d.aspects])).toEqual([['/etc/motd', ['content']]]);
    // Its definitions are not the ones the old build was made from: that one cannot be checked here.
    const stale = await cli(['verify', ...args(A), '--rebuild', 'a', '--json'], env);
    expect(stale.code, stale.stderr).toBe(2);
    expect((JSON.parse(stale.stdout) as ReproVerdict[])[0]).toMatchObject({ layer: 'a', status: 'not-checked' });
    expect((JSON.parse(stale.stdout) as ReproVerdict[])[0]!.reason).toMatch(/^the definitions in .* are not the ones it was made from: .steps\[0\]\.upload\.sha256/);
  }, 20 * MIN);

  it('a file changed inside an image after its build: verify --rebuild names it, exit 1', async () => {
    const rec = storeA.current('repro', 'b')!;
    const image = storeA.imagePath('repro', rec.image);
    chmodSync(image, 0o644);
    await withScope(async (scope) => {
      const w = mkdtempSync(path.join(tmp, 'tamper-'));
      const disk = await attachDisk(scope, image, w);
      const root = await mountRoot(scope, rootDevice(disk), w);
      writeFileSync(path.join(root, 'srv', 'b.txt'), 'leaf b, changed after its build\n');
    });
    chmodSync(image, 0o444);
    const r = await cli(['verify', ...args(A), '--rebuild', 'b', '--backend', 'chroot', '--json'], env);
    expect(r.code, r.stderr).toBe(1);
    const v = (JSON.parse(r.stdout) as ReproVerdict[])[0]!;
    expect(v.status).toBe('different');
    expect(v.tree!.paths.map((p) => p.path)).toEqual(['/srv/b.txt']);
    expect(v.tree!.paths[0]!.aspects).toContain('content');
    expect(v.reason).toBe('1 path(s) differ');
    expect(v.tree!.paths[0]!.detail).toMatch(/^content 32 bytes sha256 [0-9a-f]{12}… \/ 7 bytes sha256 [0-9a-f]{12}…; mtime /);
  }, 20 * MIN);

  it('the mirror was frozen for the run: after the first build, everything came from its copy', () => {
    expect(mirror.counts.cached).toBeGreaterThan(mirror.counts.fetched);
  });
});
