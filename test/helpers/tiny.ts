// Small real images for integration tests: seconds to make, real qcow2 chains, a real file system.
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { attachDisk, mountRoot } from '../../src/builder/disk.js';
import { withScope } from '../../src/core/scope.js';
import { SINGLE_ROOT_PARTITION } from '../../src/tools/mount.js';
import { mkfsExt4 } from '../../src/tools/e2fsprogs.js';
import * as qemuImg from '../../src/tools/qemu-img.js';
import type { BuildRecord } from '../../src/records/build.js';
import { Store } from '../../src/store/store.js';
import { imageFileName, packageDiffFileName, packageListFileName, sshKeyFileName } from '../../src/definitions/naming.js';
import type { LayerManifest } from '../../src/records/build.js';
import { computeKeys } from '../../src/plan/keys.js';
import type { LayerSet } from '../../src/definitions/types.js';
import { packageLayers } from '../../src/package/package.js';
import { pinKeyFileTime } from '../../src/builder/root-key.js';
import { publish } from '../../src/publish/publish.js';

/**
 * A 1 GiB disk with one partition holding a static busybox as the whole userland: enough for the
 * chroot backend to run `run` steps. apt-get and dpkg-query are stubs (clean-up calls one, the
 * package list the other, reading a file steps can change); the real apt path is covered by the
 * end-to-end test on the default set.
 */
export async function makeBusyboxDisk(image: string, work: string): Promise<void> {
  await qemuImg.create(image, { size: 1024 ** 3 });
  await withScope(async (scope) => {
    const disk = await attachDisk(scope, image, work, SINGLE_ROOT_PARTITION);
    await mkfsExt4(disk.partitions[0]!, 'root');
    const root = await mountRoot(scope, disk.partitions[0]!, work);
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'var/lib/apt/lists', 'proc', 'sys', 'dev', 'run']) mkdirSync(path.join(root, d), { recursive: true });
    mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
    copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
    chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    execFileSync('chroot', [root, '/bin/busybox', '--install', '-s']);
    // apt-get "installs" local .deb files by adding them to the list dpkg-query prints.
    writeFileSync(
      path.join(root, 'usr', 'bin', 'apt-get'),
      '#!/bin/sh\nfor a in "$@"; do case "$a" in /*.deb) [ -f "$a" ] || exit 4; echo "local-$(basename "$a" .deb) 1.0" >> /var/lib/ost-test/packages;; esac; done\nexit 0\n',
      { mode: 0o755 },
    );
    // dpkg-query prints a package list a step can change (the package diff is built from it).
    mkdirSync(path.join(root, 'var', 'lib', 'ost-test'), { recursive: true });
    writeFileSync(path.join(root, 'var', 'lib', 'ost-test', 'packages'), 'busybox 1:1.35.0-4+b3\nbase-files 12.4+deb12u5\n');
    writeFileSync(path.join(root, 'usr', 'bin', 'dpkg-query'), '#!/bin/sh\ncat /var/lib/ost-test/packages\n', { mode: 0o755 });
    writeFileSync(path.join(root, 'etc', 'os-release'), 'ID=busybox\n');
  });
}

/** Writes a recognisable pattern into an image so layers differ (qemu-io, part of qemu-utils). */
export function writePattern(image: string, offsetMiB: number, pattern: number): void {
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P ${pattern} ${offsetMiB}M 1M`, image], { stdio: 'ignore' });
}

/**
 * Records a build of `layer` in the store whose image is a small qcow2 (a new 64 MiB disk, or an
 * overlay on the parent record's image), as `ost-images build` would have left it.
 */
export async function fakeBuild(
  store: Store,
  set: string,
  layer: string,
  release: string,
  parent?: BuildRecord,
  pattern = 0x11,
  keyed?: { key: string; manifest: LayerManifest },
  /** Also record a guest package list (one made-up package naming the layer) and its diff. */
  withPackageList = false,
): Promise<BuildRecord> {
  store.ensure(set);
  const id = { version: '12', release };
  const file = imageFileName(set, layer, id);
  const full = store.imagePath(set, file);
  await qemuImg.create(full, parent ? { backing: parent.image } : { size: 64 * 1024 ** 2 });
  writePattern(full, 1, pattern);
  chmodSync(full, 0o444);
  let sshKey: BuildRecord['sshKey'];
  if (!parent) {
    const key = sshKeyFileName(set, layer, id);
    writeFileSync(store.imagePath(set, key), 'private\n', { mode: 0o600 });
    writeFileSync(store.imagePath(set, `${key}.pub`), 'public\n');
    // As a real base build does: every build ships the set's key with one mtime (rpm -V compares it).
    pinKeyFileTime(store.imagePath(set, key));
    pinKeyFileTime(store.imagePath(set, `${key}.pub`));
    sshKey = { private: key, public: `${key}.pub` };
  }
  let packages: BuildRecord['packages'];
  if (withPackageList) {
    const list = packageListFileName(set, layer, id);
    const diff = packageDiffFileName(set, layer, id);
    writeFileSync(store.imagePath(set, list), `busybox 1:1.35.0-4+b3\n${layer}-marker ${release}\n`);
    writeFileSync(store.imagePath(set, diff), `${JSON.stringify({ schema: 1, added: [{ name: `${layer}-marker`, version: release }], removed: [], upgraded: [], downgraded: [], unchanged: 1 })}\n`);
    packages = { list, diff, count: 2, added: 1, removed: 0, upgraded: 0, downgraded: 0 };
  }
  const rec: BuildRecord = {
    schema: 1,
    set,
    layer,
    ...id,
    image: file,
    packages,
    ...keyed,
    parent: parent ? { layer: parent.layer, version: parent.version, release: parent.release, image: parent.image } : undefined,
    sshKey,
    backend: 'test',
    builtAt: new Date().toISOString(),
    seconds: 0,
    virtualSize: 64 * 1024 ** 2,
    allocatedSize: 0,
  };
  store.commit(rec);
  return rec;
}

/**
 * The demo set's chain (base -> upgrade -> engine-installed / host-installed) as recorded builds
 * with distinct contents, under the layers' real input keys, packaged and published into `repo`.
 */
export async function publishedDemoChain(ls: LayerSet, store: Store, repo: string): Promise<{ recs: Record<string, BuildRecord>; rpms: string[] }> {
  const keys = computeKeys(ls);
  const base = await fakeBuild(store, 'demo', 'base', '20260101000000', undefined, 0x11, keys.get('base'));
  const upgrade = await fakeBuild(store, 'demo', 'upgrade', '20260101000100', base, 0x22, keys.get('upgrade'));
  const engine = await fakeBuild(store, 'demo', 'engine-installed', '20260101000200', upgrade, 0x33, keys.get('engine-installed'));
  const host = await fakeBuild(store, 'demo', 'host-installed', '20260101000300', upgrade, 0x44, keys.get('host-installed'));
  const rpms = (await packageLayers(ls, ls.order, store)).map((p) => p.rpm);
  await publish(repo, rpms);
  return { recs: { base, upgrade, engine, host }, rpms };
}

/**
 * A busybox disk standing in for a set's base build: recorded under the base layer's real input
 * key (so the planner reuses it as it would a base built by mmdebstrap), with the package list a
 * base build records (what the disk's dpkg-query prints).
 */
export async function fakeBusyboxBase(store: Store, ls: LayerSet, work: string): Promise<BuildRecord> {
  const set = ls.set.name;
  store.ensure(set);
  const id = { version: '12', release: '20260101000000' };
  const image = imageFileName(set, 'base', id);
  await makeBusyboxDisk(store.imagePath(set, image), work);
  const { key, manifest } = computeKeys(ls).get('base')!;
  const list = packageListFileName(set, 'base', id);
  const diff = packageDiffFileName(set, 'base', id);
  writeFileSync(store.imagePath(set, list), 'base-files 12.4+deb12u5\nbusybox 1:1.35.0-4+b3\n');
  writeFileSync(store.imagePath(set, diff), '{}\n');
  const rec: BuildRecord = {
    schema: 1, set, layer: 'base', ...id, image, key, manifest,
    packages: { list, diff, count: 2, added: 2, removed: 0, upgraded: 0, downgraded: 0 },
    backend: 'test', builtAt: new Date().toISOString(), seconds: 0, virtualSize: 1024 ** 3, allocatedSize: 0,
  };
  store.commit(rec);
  return rec;
}
