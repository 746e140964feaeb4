// Turns a mounted guest root into a place where the guest's own package manager can run:
// a private /dev (tmpfs with just the nodes needed, never the host's /dev, so nothing done in the
// guest can reach host devices and grub sees a /dev/disk/by-uuid that udev would have made),
// /proc, /sys, /run, the host's DNS configuration, and a policy-rc.d that keeps maintainer scripts
// from starting services on the build host. All of it is undone on release.
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Scope } from '../core/scope.js';
import { StepError } from '../core/errors.js';
import { mknod, mount, umount } from '../tools/mount.js';

const CHAR_DEVICES: [string, number, number][] = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
];

function devNumbers(dev: string): { major: number; minor: number } {
  const rdev = statSync(dev, { bigint: true }).rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { major, minor };
}

export interface ChrootOptions {
  /** Host block devices to recreate inside the guest's /dev (the base disk, for grub-install). */
  blockDevices?: string[];
  /** uuid -> device, as /dev/disk/by-uuid links. */
  byUuid?: Record<string, string>;
}

async function mountDev(scope: Scope, root: string, opts: ChrootOptions): Promise<void> {
  const dev = path.join(root, 'dev');
  mkdirSync(dev, { recursive: true });
  await mount('ost-images-dev', dev, { type: 'tmpfs', options: ['mode=0755', 'size=16m', 'nosuid'] });
  scope.defer(`mount ${dev}`, () => umount(dev));
  for (const [name, major, minor] of CHAR_DEVICES) await mknod(path.join(dev, name), '0666', 'c', major, minor);
  for (const d of ['pts', 'shm']) mkdirSync(path.join(dev, d));
  await mount('devpts', path.join(dev, 'pts'), { type: 'devpts', options: ['newinstance', 'ptmxmode=0666', 'mode=0620'] });
  scope.defer(`mount ${dev}/pts`, () => umount(path.join(dev, 'pts')));
  symlinkSync('pts/ptmx', path.join(dev, 'ptmx'));
  for (const [name, target] of [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']]) {
    symlinkSync(target!, path.join(dev, name!));
  }
  for (const block of opts.blockDevices ?? []) {
    const { major, minor } = devNumbers(block);
    await mknod(path.join(dev, path.basename(block)), '0660', 'b', major, minor);
  }
  const uuids = Object.entries(opts.byUuid ?? {});
  if (uuids.length > 0) {
    mkdirSync(path.join(dev, 'disk', 'by-uuid'), { recursive: true });
    for (const [uuid, block] of uuids) symlinkSync(`../../${path.basename(block)}`, path.join(dev, 'disk', 'by-uuid', uuid));
  }
}

/** Puts the host's resolv.conf in place and restores whatever the guest had (file, link or nothing). */
function swapResolvConf(scope: Scope, root: string): void {
  const file = path.join(root, 'etc', 'resolv.conf');
  let saved: { kind: 'none' } | { kind: 'link'; target: string } | { kind: 'file'; data: Buffer };
  try {
    const st = lstatSync(file);
    saved = st.isSymbolicLink() ? { kind: 'link', target: readlinkSync(file) } : { kind: 'file', data: readFileSync(file) };
    unlinkSync(file);
  } catch {
    saved = { kind: 'none' };
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf') : '', { flag: 'wx' });
  scope.defer('guest resolv.conf', () => {
    rmSync(file, { force: true });
    if (saved.kind === 'link') symlinkSync(saved.target, file);
    if (saved.kind === 'file') writeFileSync(file, saved.data);
  });
}

function blockServices(scope: Scope, root: string): void {
  const file = path.join(root, 'usr', 'sbin', 'policy-rc.d');
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (st && !st.isSymbolicLink()) return; // The image ships its own policy; leave it alone.
  if (st) throw new StepError(`${file} is a symbolic link in the image; refusing to write through it`);
  mkdirSync(path.dirname(file), { recursive: true });
  // 101: "action not allowed" - invoke-rc.d then skips starting services during package installs.
  // 'wx': never through a link created meanwhile.
  writeFileSync(file, '#!/bin/sh\nexit 101\n', { mode: 0o755, flag: 'wx' });
  scope.defer('guest policy-rc.d', () => rmSync(file, { force: true }));
}

export async function prepareChroot(scope: Scope, root: string, opts: ChrootOptions = {}): Promise<void> {
  await mountDev(scope, root, opts);
  for (const [what, type] of [['proc', 'proc'], ['run', 'tmpfs']] as const) {
    const target = path.join(root, what);
    mkdirSync(target, { recursive: true });
    await mount(what, target, { type, options: type === 'tmpfs' ? ['mode=0755', 'nosuid', 'nodev'] : ['nosuid', 'nodev', 'noexec'] });
    scope.defer(`mount ${target}`, () => umount(target));
  }
  const sys = path.join(root, 'sys');
  mkdirSync(sys, { recursive: true });
  await mount('/sys', sys, { bind: true });
  scope.defer(`mount ${sys}`, () => umount(sys));
  swapResolvConf(scope, root);
  blockServices(scope, root);
}
