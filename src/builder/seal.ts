// The last step of every layer build on a mounted guest tree (the chroot backend and every base):
//   1. sysprep: take out what is per machine or secret, and the build's logs and caches
//      (sysprep.ts has the rules and why);
//   2. clamp: every file time newer than the layer's SOURCE_DATE_EPOCH becomes that time, so two
//      builds of the same inputs give the same file tree, mtimes included; files made during the
//      build in a format that records its own time (Java key stores) are normalized (normalize.ts);
//   3. check: no rule's file is left and no file made during this build holds a private key;
//      otherwise the build fails naming each file.
// It runs after the chroot environment is torn down (nothing mounted below the root, the guest's
// own resolv.conf back), so what it leaves is what the image holds.
//
// The tree is the guest's: a symbolic link in it points into the guest, never at the host. Paths
// of rules are resolved inside the root (resolveInGuest), and the walk never follows a link.
import { closeSync, lstatSync, mkdirSync, openSync, readSync, writeSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, lutimesSync, writeFileSync, chmodSync, type Stats } from 'node:fs';
import path from 'node:path';
import { StepError } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { fileFlags, setFileFlags } from '../tools/e2fsprogs.js';
import { mayNormalize, normalize } from './normalize.js';
import { PRIVATE_KEY, ROTATED_LOG, SCANNED_DIRS, SCAN_MAX_BYTES, SYSPREP_RULES, firstbootFiles, type SysprepRule } from './sysprep.js';

/**
 * The host path of `guestPath` inside `root`, with every symbolic link on the way resolved as the
 * guest would (an absolute target starts again at the root, `..` never leaves it), or undefined
 * when something on the way is missing or not a folder. The last component is followed only with
 * `followLast` (a folder to work in); otherwise the caller acts on the entry itself.
 */
export function resolveInGuest(root: string, guestPath: string, followLast = false): string | undefined {
  const parts = guestPath.split('/').filter((p) => p && p !== '.');
  const done: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const name = parts.shift()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, name);
    const last = parts.length === 0;
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (last && !followLast) return host;
    if (!st) return last ? host : undefined;
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    if (!last && !st.isDirectory()) return undefined;
    done.push(name);
  }
  return path.join(root, ...done);
}

/** Makes a guest folder (and the ones above it), resolving links inside the guest; its host path. */
function guestMkdir(root: string, guestDir: string): string {
  const parts = guestDir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const host = resolveInGuest(root, `/${parts.slice(0, i).join('/')}`, true);
    if (!host) throw new StepError(`cannot make ${guestDir} in the image: ${parts.slice(0, i).join('/')} is not a folder`);
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (!st) mkdirSync(host, { mode: 0o755 });
    else if (!st.isDirectory()) throw new StepError(`cannot make ${guestDir} in the image: /${parts.slice(0, i).join('/')} is not a folder`);
  }
  return resolveInGuest(root, guestDir, true)!;
}

/** Entries of a guest directory matching the rule's last component (`*` is a wildcard). */
function matches(root: string, rulePath: string): string[] {
  const dir = resolveInGuest(root, path.posix.dirname(rulePath), true);
  const last = path.posix.basename(rulePath);
  if (!dir) return [];
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return [];
  if (!last.includes('*')) return lstatSync(path.join(dir, last), { throwIfNoEntry: false }) ? [path.join(dir, last)] : [];
  const re = new RegExp(`^${last.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return readdirSync(dir).filter((n) => re.test(n)).map((n) => path.join(dir, n));
}

/** Regular files below a directory (no links followed, no other file system entered). */
function filesBelow(dir: string, dev: number, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (lstatSync(p).dev === dev) filesBelow(p, dev, out);
    } else if (e.isFile()) {
      out.push(p);
    }
  }
  return out;
}

/** Applies one rule; returns the guest paths it changed. */
function apply(root: string, rule: SysprepRule, dev: number): string[] {
  const rel = (p: string) => `/${path.relative(root, p)}`;
  const changed: string[] = [];
  for (const p of matches(root, rule.path)) {
    const st = lstatSync(p);
    switch (rule.action) {
      case 'remove':
        rmSync(p, { recursive: true, force: true });
        changed.push(rel(p));
        break;
      case 'empty':
        if (st.isFile() && st.size > 0) {
          truncateSync(p, 0);
          changed.push(rel(p));
        }
        break;
      case 'link':
        if (!(st.isSymbolicLink() && readlinkSync(p) === rule.target)) {
          rmSync(p, { recursive: true, force: true });
          symlinkSync(rule.target!, p);
          changed.push(rel(p));
        }
        break;
      case 'clear':
        if (st.isDirectory()) {
          for (const n of readdirSync(p)) {
            rmSync(path.join(p, n), { recursive: true, force: true });
            changed.push(`${rel(p)}/${n}`);
          }
        }
        break;
      case 'empty-below':
        if (st.isDirectory()) {
          for (const f of filesBelow(p, dev)) {
            if (ROTATED_LOG.test(f)) {
              rmSync(f, { force: true });
              changed.push(rel(f));
            } else if (lstatSync(f).size > 0) {
              truncateSync(f, 0);
              changed.push(rel(f));
            }
          }
        }
        break;
    }
  }
  return changed;
}

/** What a rule leaves must hold; the problems, one line each. */
function violations(root: string, rule: SysprepRule, dev: number): string[] {
  const out: string[] = [];
  for (const p of matches(root, rule.path)) {
    const st = lstatSync(p);
    const g = `/${path.relative(root, p)}`;
    if (rule.action === 'remove') out.push(`${g}: ${rule.why}`);
    else if (rule.action === 'empty' && st.isFile() && st.size > 0) out.push(`${g} is not empty: ${rule.why}`);
    else if (rule.action === 'link' && !(st.isSymbolicLink() && readlinkSync(p) === rule.target) && !(st.isFile() && st.size === 0)) out.push(`${g} is not a link to ${rule.target}: ${rule.why}`);
    else if (rule.action === 'clear' && st.isDirectory() && readdirSync(p).length > 0) out.push(`${g} is not empty: ${rule.why}`);
    else if (rule.action === 'empty-below' && st.isDirectory()) for (const f of filesBelow(p, dev)) if (lstatSync(f).size > 0) out.push(`/${path.relative(root, f)} is not empty: ${rule.why}`);
  }
  return out;
}

/** Files up to this size made during the build are looked at for formats normalize.ts rewrites. */
const NORMALIZE_MAX_BYTES = 16 * 1024 * 1024;

/** Rewrites a file made during the build whose format records a time; true if it did. */
function normalizeFile(file: string, st: Stats, epoch: number): boolean {
  if (st.size < 4 || st.size > NORMALIZE_MAX_BYTES) return false;
  const fd = openSync(file, 'r');
  let buf: Buffer;
  try {
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    if (!mayNormalize(head)) return false;
    buf = Buffer.alloc(st.size);
    readSync(fd, buf, 0, st.size, 0);
  } finally {
    closeSync(fd);
  }
  const out = normalize(buf, epoch);
  if (!out) return false;
  // In place: the file keeps its inode, owner and mode.
  const w = openSync(file, 'r+');
  try {
    writeSync(w, out, 0, out.length, 0);
  } finally {
    closeSync(w);
  }
  return true;
}

function holdsPrivateKey(file: string, st: Stats): boolean {
  if (st.size === 0 || st.size > SCAN_MAX_BYTES) return false;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(st.size);
    readSync(fd, buf, 0, st.size, 0);
    return PRIVATE_KEY.test(buf.toString('latin1'));
  } finally {
    closeSync(fd);
  }
}

export interface SealResult {
  /** Guest paths sysprep took out or emptied. */
  removed: string[];
  /** Entries whose time was clamped to the epoch (made or changed during this build). */
  clamped: number;
  /** Entries in the tree. */
  entries: number;
  /** Files whose recorded times were rewritten (normalize.ts). */
  normalized: string[];
}

/**
 * Walks the tree once: clamps times newer than `epoch` (lutimes: a link's own time, never its
 * target's) and collects files made during the build in the scanned folders for the key check.
 */
function clampTree(root: string, epoch: number, dev: number): { clamped: number; entries: number; fresh: string[]; normalized: string[]; locked: string[] } {
  const scanned = SCANNED_DIRS.map((d) => path.join(root, d));
  const inScanned = (p: string) => scanned.some((d) => p === d || p.startsWith(`${d}/`));
  const fresh: string[] = [];
  const normalized: string[] = [];
  const locked: string[] = [];
  let clamped = 0;
  let entries = 0;
  const limitMs = epoch * 1000;
  // Children before their directory: clamping a child changes nothing in its parent, but a
  // directory is best set last anyway.
  const visit = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      if (st.dev !== dev) continue; // another file system mounted here: not the image's
      entries++;
      if (st.isDirectory()) visit(p);
      if (st.mtimeMs > limitMs || st.atimeMs > limitMs) {
        if (st.isFile() && st.mtimeMs > limitMs && inScanned(p) && holdsPrivateKey(p, st)) fresh.push(p);
        if (st.isFile() && st.mtimeMs > limitMs && normalizeFile(p, st, epoch)) normalized.push(`/${path.relative(root, p)}`);
        try {
          lutimesSync(p, Math.min(st.atimeMs, limitMs) / 1000, Math.min(st.mtimeMs, limitMs) / 1000);
        } catch (err) {
          // An immutable or append-only file (extlinux makes ldlinux.sys immutable): its flags are
          // lifted for the moment its time is set (below, with chattr).
          if ((err as NodeJS.ErrnoException).code !== 'EPERM' || !st.isFile() && !st.isDirectory()) throw err;
          locked.push(p);
        }
        clamped++;
      }
    }
    if (entries % 4096 === 0) checkInterrupted();
  };
  visit(root);
  const st = lstatSync(root);
  if (st.mtimeMs > limitMs) {
    lutimesSync(root, epoch, epoch);
    clamped++;
  }
  return { clamped, entries, fresh, normalized, locked };
}

/**
 * Seals the mounted guest tree of a layer build: sysprep, the first-boot unit (`firstBoot`: base
 * layers), clamped times, and the check. Throws a StepError naming every file that must not be in
 * an image.
 */
export async function sealTree(root: string, o: { layer: string; epoch: number; firstBoot: boolean }): Promise<SealResult> {
  const dev = lstatSync(root).dev;
  if (o.firstBoot) writeFirstboot(root);
  const removed = SYSPREP_RULES.flatMap((r) => apply(root, r, dev));
  if (removed.length > 0) log.debug(`${o.layer}: sysprep took out ${removed.join(', ')}`);
  const { clamped, entries, fresh, normalized, locked } = clampTree(root, o.epoch, dev);
  for (const p of locked) {
    const flags = await fileFlags(p);
    const lift = ['i', 'a'].filter((f) => flags.includes(f));
    if (lift.length === 0) throw new StepError(`${o.layer}: cannot set the time of /${path.relative(root, p)} (permission denied, and it is neither immutable nor append-only)`);
    await setFileFlags(p, `-${lift.join('')}`);
    try {
      lutimesSync(p, o.epoch, o.epoch);
    } finally {
      await setFileFlags(p, `+${lift.join('')}`);
    }
  }
  if (normalized.length > 0) log.debug(`${o.layer}: times inside ${normalized.join(', ')} set to the epoch`);
  const problems = [
    ...SYSPREP_RULES.flatMap((r) => violations(root, r, dev)),
    ...fresh.map((f) => `/${path.relative(root, f)} holds a private key made during the build: every VM of this build would share it (make it at first boot)`),
  ];
  if (problems.length > 0) {
    throw new StepError(`${o.layer}: the image would carry what no image may (see docs/reproducible.md, "Nothing per machine, nothing secret"):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
  log.info(`${o.layer}: sealed: ${removed.length} per-machine or build-time file(s) taken out, ${clamped} of ${entries} entries dated ${new Date(o.epoch * 1000).toISOString()}`);
  return { removed, clamped, entries, normalized };
}

/** The first-boot unit and script (sysprep.ts), written through the guest's own paths. */
function writeFirstboot(root: string): void {
  const { files, enable } = firstbootFiles();
  for (const [file, content, mode] of files) {
    const host = path.join(guestMkdir(root, path.posix.dirname(file)), path.posix.basename(file));
    rmSync(host, { force: true });
    writeFileSync(host, content, { mode, flag: 'wx' });
    chmodSync(host, mode);
  }
  const [link, target] = enable;
  const host = path.join(guestMkdir(root, path.posix.dirname(link)), path.posix.basename(link));
  rmSync(host, { force: true });
  symlinkSync(target, host);
}
