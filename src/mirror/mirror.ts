// Mirrors: copies of a published repository on other hosts (or directories), updated so that a
// client reading a mirror at any moment sees the old snapshot or the new one, never a mixture, and
// never a 404 for a file the metadata it read names. Each destination gets, in this order:
//
//   1. data      the pool and every snapshot's package links (new files only; nothing served
//                names them yet)
//   2. metadata  every snapshot directory whole (repodata, snapshot.json, page): new snapshots are
//                still unreferenced, old ones unchanged
//   3. switch    every top-level entry that is not a directory (the served-snapshot link(s), the
//                .repo file, the key, the page link), each replaced by one rename; links that point
//                through another top-level link go after it (`repodata -> current/repodata` after
//                `current`), so a repository moving from the old layout to the new one never
//                points at a link that is not there yet
//   4. delete    whatever the source no longer has (snapshots it retired past their grace period,
//                the pool files only they listed), and rsync's leftovers of an interrupted run
//
// Nothing here depends on which top-level link is "the" switch: whatever the publisher renames is
// a top-level symlink, and phase 3 carries each such link over by one rename (rsync's own way of
// replacing a symlink, see tools/rsync.ts). Phase 4 removes only what the source does not keep:
// the source keeps the snapshot it replaced and any retired within its grace period, so clients of
// a mirror that is updated within that period after a publish are covered as the source's own
// clients are. Nothing runs a mirror by itself: `nightly --mirror` and `promote --mirror` push right
// after their publish (pushToMirrors below); a site that publishes otherwise runs `ost-images
// mirror` after each publish.
//
// A destination is written only when it is empty (or does not exist yet), or holds the marker
// file MIRROR_MARKER that an earlier push wrote there before anything else: phase 4 deletes
// whatever the source does not have, so a mistyped destination that merely looks like a mirror
// (any JavaScript checkout has a packages/ folder) must never be taken for one. The marker is
// checked before anything is written, and survives every phase (excluded from transfer and
// deletion alike).
//
// The source is read under its repository lock (the one every publisher takes): the mirror copies
// exactly one state of the repository, and no publish changes the pool (re-signing, retention)
// between the phases. A publisher waits meanwhile; it does not fail. Copying from one snapshot's
// own files without the lock would still race with re-signing and with retention removing that
// snapshot, and would need its own rules for everything else at the top level.
import { accessSync, constants, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT_INTERRUPTED, OstError, StepError, ToolMissingError, UsageError, quote } from '../core/errors.js';
import { checkInterrupted } from '../core/interrupt.js';
import { acquireLock } from '../core/lock.js';
import { log } from '../core/log.js';
import { pidsUsing, pidsWhere } from '../core/proc.js';
import { fsError } from '../input/paths.js';
import { faultAt, holdPoint, killSelf, stopProcesses, whenInDir } from '../input/test-hooks.js';
import { haveTool, missingToolMessage } from '../tools/run.js';
import { POOL, SNAPSHOTS, servedStamp } from '../repository/snapshot.js';
import { destinationArg, describeDestination, fileArgs, listArgs, parentDestination, parseDestination, parseItemized, parseStats, remoteShellEnv, rsync, transferArgs, type Destination, type Differences, type TransferStats } from '../tools/rsync.js';

export type Phase = 'data' | 'metadata' | 'switch' | 'delete';

/**
 * What a publisher may have left in the source that is no part of the repository: the lock and its
 * owner files, staging folders, temporary links and files of atomic writes, partial snapshots and
 * the scratch entries of a snapshot being completed (hidden names inside it).
 * Hidden on the sender's side only (`-s`), so that the same names at a destination (rsync's own
 * temporary files of a killed run among them) are not protected from deletion in phase 4.
 */
export const SOURCE_INTERNALS = ['-s /.lock', '-s /.lock.*', '-s /.incoming-*', '-s /.*.tmp*', `-s /${SNAPSHOTS}/*.partial-*`, `-s /${SNAPSHOTS}/*/.*`, '-s .*.tmp-*'];

/**
 * The file a push writes into a destination before anything else, so that a later push knows the
 * directory is a mirror it may delete in (a hidden name: web servers do not list it).
 */
export const MIRROR_MARKER = '.ost-images-mirror';
const MARKER_TEXT = 'A mirror of an ost-images repository, written by `ost-images mirror`.\nEach push deletes here whatever the repository no longer has.\n';

/** Excluded on both sides: never sent (a source that is itself a mirror) and never deleted. */
export const MARKER_FILTER = `- /${MIRROR_MARKER}`;

/** The rsync filter rules of each phase, after SOURCE_INTERNALS and MARKER_FILTER. */
export function phaseFilters(phase: Phase, switchNames: string[] = []): string[] {
  switch (phase) {
    case 'data':
      return [`+ /${POOL}/***`, `+ /${SNAPSHOTS}/`, `+ /${SNAPSHOTS}/*/`, `+ /${SNAPSHOTS}/*/${POOL}/***`, '- *'];
    case 'metadata':
      // Every top-level directory whole: a superset of the data phase, so --hard-links sees each
      // package's pool name and snapshot names in one transfer and links them at the mirror too.
      return ['+ /*/***', '- *'];
    case 'switch':
      return [...switchNames.map((n) => `+ /${escapeFilter(n)}`), '- *'];
    case 'delete':
      return [];
  }
}

/** A name as a literal in an rsync filter pattern (wildcards and backslashes escaped). */
function escapeFilter(name: string): string {
  return name.replace(/[\\*?[]/g, (c) => `\\${c}`);
}

export interface TopEntry {
  name: string;
  /** Set for a symbolic link. */
  target?: string;
}

/**
 * The order of phase 3: groups of top-level entries, each group transferred by one rsync run. A
 * link whose target starts with another switched entry's name goes in a later group than that
 * entry. Plain files (the .repo file, the key) and links into the snapshots come first.
 */
export function switchOrder(entries: TopEntry[]): string[][] {
  const names = new Set(entries.map((e) => e.name));
  const dependsOn = (e: TopEntry): string | undefined => {
    if (e.target === undefined || e.target.startsWith('/')) return undefined;
    const first = path.posix.normalize(e.target).split('/')[0]!;
    return first !== e.name && names.has(first) ? first : undefined;
  };
  const placed = new Set<string>();
  const groups: string[][] = [];
  let left = [...entries].sort((a, b) => a.name.localeCompare(b.name));
  while (left.length > 0) {
    const ready = left.filter((e) => {
      const dep = dependsOn(e);
      return dep === undefined || placed.has(dep);
    });
    // A cycle of links (not made by ost-images): whatever order; none of it can resolve anyway.
    const group = ready.length > 0 ? ready : left;
    groups.push(group.map((e) => e.name));
    for (const e of group) placed.add(e.name);
    left = left.filter((e) => !placed.has(e.name));
  }
  return groups;
}

/** The top-level entries of the source that phase 3 switches: everything but directories and hidden files. */
export function switchEntries(src: string): TopEntry[] {
  const out: TopEntry[] = [];
  for (const name of readdirSync(src)) {
    if (name.startsWith('.')) continue;
    const st = lstatSync(path.join(src, name));
    if (st.isDirectory()) continue;
    out.push(st.isSymbolicLink() ? { name, target: readlinkSync(path.join(src, name)) } : { name });
  }
  return out;
}

export interface PhaseReport extends TransferStats {
  phase: Phase;
  seconds: number;
}

export interface DestinationReport {
  dest: string;
  kind: Destination['kind'];
  /** Set when the destination was synced (not with --verify alone). */
  phases?: PhaseReport[];
  files: number;
  bytes: number;
  sentBytes: number;
  deleted: number;
  seconds: number;
  verify?: Differences & { ok: boolean };
}

export interface MirrorReport {
  source: string;
  /** The snapshot the source served (and every destination serves afterwards). */
  snapshot: string;
  destinations: DestinationReport[];
  /** False when --verify found a difference. */
  ok: boolean;
}

export interface MirrorOptions {
  /** Only compare every file's checksum at each destination with the source; change nothing. */
  verifyOnly?: boolean;
  /** Compare contents by checksum when syncing (repairs a damaged file of unchanged size and time). */
  checksum?: boolean;
  /** Bandwidth limit of every transfer, KiB/s. */
  bwlimit?: number;
  /**
   * The remote shell of [user@]host:path mirrors (`ssh -p 2222 -i KEY`), as rsync's --rsh. Unset:
   * RSYNC_RSH from the environment, else rsync's default (ssh).
   */
  rsh?: string;
  /** The option that named the destinations, for messages (`--to`; `--mirror` of nightly and promote). */
  option?: string;
}

export interface Target {
  dest: Destination;
  arg: string;
  label: string;
  /** For an ssh destination: the remote shell command, if not rsync's default. */
  rsh?: string;
  /** For an ssh destination: what ssh needs from our environment (the agent's socket). */
  env: Record<string, string>;
  /** Holds the marker already (else the push writes it first). */
  marked?: boolean;
}

/** Checks everything before anything is written: bad input is exit 2 with nothing changed. */
function checkSource(src: string): string {
  const abs = path.resolve(src);
  let st;
  try {
    st = statSync(abs);
  } catch (err) {
    throw new UsageError(`--repo: ${quote(src)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isDirectory()) throw new UsageError(`--repo: ${quote(src)} is not a directory`);
  try {
    accessSync(abs, constants.R_OK | constants.X_OK);
  } catch {
    throw new UsageError(`--repo: ${quote(src)} cannot be read (permission denied)`);
  }
  let stamp: string | undefined;
  try {
    stamp = servedStamp(abs);
  } catch (err) {
    throw new UsageError(`--repo: ${quote(src)} is not a repository published by ost-images: ${(err as Error).message}`);
  }
  if (!stamp) throw new UsageError(`--repo: ${quote(src)} is not a published repository (it serves no snapshot)`);
  return abs;
}

const inside = (child: string, parent: string): boolean => child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);

function realish(p: string): string {
  // The nearest existing ancestor resolved (a destination may not exist yet): a path through a
  // symlink into the source is still inside it.
  let existing = path.resolve(p);
  const rest: string[] = [];
  while (!existsSync(existing)) {
    rest.unshift(path.basename(existing));
    existing = path.dirname(existing);
  }
  return path.join(realpathSync(existing), ...rest);
}

/** rsync's own error lines (`rsync: ...`, `ssh: ...`, `Permission denied ...`), not its summary line. */
function rsyncComplaint(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const own = lines.filter((l) => !/^rsync error:/.test(l) && !/write error: Broken pipe|connection unexpectedly closed/.test(l));
  return (own.length > 0 ? own : lines).slice(-3).join(' ');
}

/**
 * The top-level names of a remote directory, or undefined when it does not exist. Fails before
 * anything is written: a directory that cannot be read (not a directory, permission denied) is bad
 * input (exit 2); a host that cannot be reached or refuses the login is a failed step (exit 1: the
 * same command may work once the host is back).
 */
async function listRemote(dest: Destination, t: Target, option: string): Promise<string[] | undefined> {
  const r = await rsync(listArgs(destinationArg(dest), t.rsh), { allowFailure: true, env: t.env });
  // 23, "some files could not be transferred": the sender could not enter the directory; its
  // message names it and says why (`change_dir "/srv/x" failed: Not a directory (20)`).
  if (r.exitCode === 23) {
    if (/change_dir .* failed: No such file or directory/.test(r.stderr)) return undefined;
    throw new UsageError(`${option}: ${quote(t.label)} cannot be used as a mirror directory: ${rsyncComplaint(r.stderr)}`);
  }
  if (r.exitCode !== 0) throw new StepError(`cannot list mirror ${t.label} (rsync exit ${r.exitCode}): ${rsyncComplaint(r.stderr)}`);
  return r.stdout
    .split('\n')
    .map((l) => /^\S+\s+[0-9,]+\s+\S+\s+\S+\s+(.+)$/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== '.')
    .map((n) => n.split(' -> ')[0]!);
}

/** Names in the top level of a destination (empty when it does not exist yet). */
async function destinationEntries(t: Target, option: string): Promise<string[]> {
  if (t.dest.kind === 'local') {
    const p = path.resolve(t.dest.path);
    if (!existsSync(p)) return [];
    if (!statSync(p).isDirectory()) throw new UsageError(`${option}: ${quote(t.dest.path)} exists and is not a directory`);
    return readdirSync(p);
  }
  const names = await listRemote(t.dest, t, option);
  if (names !== undefined) return names;
  // Not there yet. rsync will create it, but only it, not a missing parent (a local mirror gets
  // its parents made): without this check the first phase would fail on the mirror host with
  // `mkdir ... failed`, after a connection per phase; now the user hears it before anything runs.
  const parent = parentDestination(t.dest);
  if (parent !== undefined && (await listRemote(parent, t, option)) === undefined) {
    throw new UsageError(`${option}: ${quote(t.label)}: the parent directory ${describeDestination(parent)} does not exist; rsync creates only the mirror directory itself, so create its parent on the mirror host first`);
  }
  return [];
}

/**
 * Why a destination's top-level names show it is no mirror (mirroring would delete them), or
 * undefined: only an empty directory, or one holding the marker of an earlier push, is one.
 */
function notAMirror(option: string, label: string, names: string[]): string | undefined {
  if (names.length === 0 || names.includes(MIRROR_MARKER)) return undefined;
  const shown = [...names].sort().slice(0, 5).map((n) => quote(n)).join(', ');
  return (
    `${option}: ${quote(label)} is neither empty nor a mirror an earlier \`ost-images mirror\` wrote (it has no ${MIRROR_MARKER} file): ` +
    `it holds ${shown}${names.length > 5 ? ` and ${names.length - 5} more` : ''}, which mirroring would delete. ` +
    `Give an empty or new directory (a mirror made before ost-images wrote the marker: create an empty ${MIRROR_MARKER} in it)`
  );
}

/**
 * The destinations, checked without contacting any of them: each one's form, none given twice,
 * none inside the source or around it, and a local one that exists a directory that is empty or
 * a mirror. Every problem at once (UsageError). The source need not exist yet: a nightly checks its
 * mirrors before its first publish creates the repository.
 */
export function checkDestinations(src: string, given: string[], option = '--to', rsh?: string): Target[] {
  if (given.length === 0) throw new UsageError(`${option}: give at least one destination`);
  const problems: string[] = [];
  const seen = new Set<string>();
  const targets: Target[] = [];
  const realSrc = realish(src);
  for (const text of given) {
    let dest: Destination;
    try {
      dest = parseDestination(text, option);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    if (dest.kind === 'local') {
      const abs = realish(dest.path);
      if (inside(abs, realSrc)) {
        problems.push(`${option}: ${quote(text)} is inside the source repository ${src}`);
        continue;
      }
      if (inside(realSrc, abs)) {
        problems.push(`${option}: ${quote(text)} contains the source repository ${src}; mirroring would delete it`);
        continue;
      }
      dest.path = path.resolve(dest.path);
      let names: string[] | undefined;
      try {
        const st = statSync(dest.path, { throwIfNoEntry: false });
        if (st && !st.isDirectory()) {
          problems.push(`${option}: ${quote(text)} exists and is not a directory`);
          continue;
        }
        names = st ? readdirSync(dest.path) : undefined;
      } catch (err) {
        // Too long a name, a file on the way, no permission: the path is wrong, say which.
        const bad = fsError(option, text, err);
        if (!bad) throw err;
        problems.push(bad.message);
        continue;
      }
      const busy = names ? notAMirror(option, text, names) : undefined;
      if (busy) {
        problems.push(busy);
        continue;
      }
    }
    const arg = destinationArg(dest);
    if (seen.has(arg)) {
      problems.push(`${option}: ${quote(text)} is given twice`);
      continue;
    }
    seen.add(arg);
    // Only ssh destinations get the remote shell: with --rsh, rsync would reach an rsync://
    // daemon through that shell instead of its port.
    targets.push(dest.kind === 'ssh' ? { dest, arg, label: describeDestination(dest), rsh, env: remoteShellEnv() } : { dest, arg, label: describeDestination(dest), env: {} });
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return targets;
}

/**
 * Test hook (test-hooks.ts): with OST_IMAGES_MIRROR_HOLD=1 the mirror stops before each phase
 * (and after the last), says `mirror-hold <point> <destination>` on stderr and goes on at SIGUSR2
 * (bounded). A test makes its readers complete a read at every point, counting events rather than
 * sleeping.
 */
const hold = (point: Phase | 'end', label: string): Promise<void> => holdPoint(`mirror-hold ${point} ${label}`);

/**
 * rsync processes of an earlier mirror of this source that was killed (SIGKILL leaves its children
 * running, or stopped by the fault hook). Known by their argv: the source's contents and our own
 * filter rule. Only called under the source's lock, so no live mirror of this source owns any.
 * Over ssh the orphan has an ssh child and an rsync on the mirror host, whose argv name neither:
 * both end by themselves once the orphan is killed and its end of the connection closes (the
 * remote rsync removes its temporary file as it goes; test/integration/mirror-ssh.test.ts).
 */
function orphanedTransfers(srcArg: string): number[] {
  return pidsWhere((argv) => path.basename(argv[0] ?? '') === 'rsync' && argv.includes(srcArg) && argv.includes(`--filter=${SOURCE_INTERNALS[0]}`));
}

function stopOrphans(srcArg: string): void {
  const pids = orphanedTransfers(srcArg);
  if (pids.length === 0) return;
  log.warn(`stopping rsync process(es) ${pids.join(' ')} left by an interrupted mirror of this repository`);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
}

/** KiB/s of a faulted transfer to a local mirror (test hook). */
const FAULT_BWLIMIT = 4096;
/** How long the fault hook waits for rsync's temporary file to hold data before it fails loudly. */
const FAULT_WAIT_S = 600;

/**
 * Test hook OST_IMAGES_FAULT=mirror:during-<phase> (test-hooks.ts), called with each line rsync
 * prints: at the first package whose transfer starts, it stops the transfer's rsync processes
 * (SIGSTOP: they are still there, mid-file, whenever the next run looks, as faultWhileRunning does
 * for createrepo_c) and SIGKILLs the mirror. At a local destination it first waits, by inotify
 * events on the pool directory, until rsync's temporary file of that package holds data (mid-file
 * for certain); elsewhere it stops the local rsync (the sender) at once, and the ssh client and the
 * rsync on the mirror host wait on it.
 */
function faultHook(src: string, t: Target): (line: string) => void {
  let faulted = false;
  return (line) => {
    const m = new RegExp(`(?:^|\\s)${POOL}/([^/]+\\.rpm)$`).exec(line.trim());
    if (faulted || !m) return;
    faulted = true;
    const stopAndDie = (pids: Iterable<number>) => {
      stopProcesses(pids);
      killSelf();
    };
    if (t.dest.kind !== 'local') return stopAndDie(orphanedTransfers(src));
    const dest = t.dest.path;
    const pool = path.join(dest, POOL);
    const started = () => existsSync(pool) && readdirSync(pool).some((f) => f.startsWith(`.${m[1]}.`) && (statSync(path.join(pool, f), { throwIfNoEntry: false })?.size ?? 0) > 0);
    whenInDir(pool, started, FAULT_WAIT_S).then(
      () => stopAndDie(pidsUsing([dest]).keys()),
      (err: Error) => {
        log.error(`test hook OST_IMAGES_FAULT=mirror:during-...: rsync's temporary file of ${m[1]} never held data: ${err.message}`);
        process.exit(1);
      },
    );
  };
}

async function transfer(src: string, t: Target, phase: Phase, filters: string[], opts: MirrorOptions): Promise<PhaseReport> {
  const t0 = Date.now();
  const fault = faultAt(`mirror:during-${phase}`);
  const args = transferArgs(src, t.arg, {
    filters: [...SOURCE_INTERNALS, MARKER_FILTER, ...filters],
    delete: phase === 'delete',
    checksum: opts.checksum,
    // The hook below must see rsync's temporary file of a package while it is still being written:
    // unthrottled, a loaded machine's event loop can miss the whole file (48 MiB at a local
    // destination). 4 MiB/s leaves the hook seconds, not milliseconds; it kills rsync at once.
    bwlimit: fault && t.dest.kind === 'local' ? Math.min(opts.bwlimit ?? FAULT_BWLIMIT, FAULT_BWLIMIT) : opts.bwlimit,
    progress: fault,
    rsh: t.rsh,
  });
  const r = await rsync(args, { onLine: fault ? faultHook(src, t) : undefined, env: t.env });
  const stats = parseStats(r.stdout);
  return { phase, ...stats, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Writes MIRROR_MARKER into a destination that does not hold it yet (an empty or new one), before
 * anything else: from then on, a push interrupted at any point leaves a directory the next push
 * recognizes. One rsync run of that file alone (rsync makes the directory), whatever the kind.
 */
async function markDestination(t: Target): Promise<void> {
  if (t.marked) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ost-images-mirror-'));
  try {
    const marker = path.join(dir, MIRROR_MARKER);
    writeFileSync(marker, MARKER_TEXT, { mode: 0o644 });
    // A fixed time: a later push of it (a mirror of a mirror) finds nothing to send.
    utimesSync(marker, 0, 0);
    await rsync(fileArgs(marker, t.arg, t.rsh), { env: t.env });
    t.marked = true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function syncOne(src: string, t: Target, opts: MirrorOptions): Promise<PhaseReport[]> {
  if (t.dest.kind === 'local') mkdirSync(t.dest.path, { recursive: true });
  await markDestination(t);
  const phases: PhaseReport[] = [];
  const step = async (phase: Phase, filters: string[]) => {
    await hold(phase, t.label);
    checkInterrupted();
    const p = await transfer(src, t, phase, filters, opts);
    log.info(`mirror ${t.label}: ${phase}: ${p.files} file(s), ${p.bytes} byte(s)${p.deleted ? `, ${p.deleted} deleted` : ''} in ${p.seconds.toFixed(1)} s`);
    phases.push(p);
  };
  await step('data', phaseFilters('data'));
  await step('metadata', phaseFilters('metadata'));
  const groups = switchOrder(switchEntries(src));
  await hold('switch', t.label);
  const t0 = Date.now();
  const sw: PhaseReport = { phase: 'switch', files: 0, bytes: 0, sentBytes: 0, deleted: 0, seconds: 0 };
  for (const g of groups) {
    checkInterrupted();
    const p = await transfer(src, t, 'switch', phaseFilters('switch', g), opts);
    sw.files += p.files;
    sw.bytes += p.bytes;
    sw.sentBytes += p.sentBytes;
  }
  sw.seconds = (Date.now() - t0) / 1000;
  log.info(`mirror ${t.label}: switch: ${groups.flat().join(', ')} in ${sw.seconds.toFixed(1)} s`);
  phases.push(sw);
  await step('delete', phaseFilters('delete'));
  await hold('end', t.label);
  return phases;
}

async function verifyOne(src: string, t: Target): Promise<Differences & { ok: boolean }> {
  if (t.dest.kind === 'local' && !existsSync(t.dest.path)) {
    // rsync would create the directory in a dry run's report only; say it plainly.
    return { ok: false, differing: [], missing: ['.'], extra: [] };
  }
  const r = await rsync(transferArgs(src, t.arg, { filters: [...SOURCE_INTERNALS, MARKER_FILTER], delete: true, checksum: true, dryRun: true, hardLinks: false, rsh: t.rsh }), { env: t.env });
  const d = parseItemized(r.stdout);
  return { ...d, ok: d.differing.length + d.missing.length + d.extra.length === 0 };
}

export async function mirror(srcGiven: string, dests: string[], opts: MirrorOptions = {}): Promise<MirrorReport> {
  const option = opts.option ?? '--to';
  const src = checkSource(srcGiven);
  const rsh = opts.rsh ?? (process.env.RSYNC_RSH?.trim() ? process.env.RSYNC_RSH : undefined);
  const targets = checkDestinations(src, dests, option, rsh);
  if (opts.rsh !== undefined && !targets.some((t) => t.dest.kind === 'ssh')) {
    throw new UsageError(`--rsh: only [user@]host:path mirrors use a remote shell, and no ${option} names one`);
  }
  for (const t of targets) {
    // Local ones were looked at above; a remote one can only be listed now.
    const names = await destinationEntries(t, option);
    const busy = notAMirror(option, t.label, names);
    if (busy) throw new UsageError(busy);
    t.marked = names.includes(MIRROR_MARKER);
  }
  const srcArg = `${src}/`;
  let unlock: () => void;
  try {
    unlock = await acquireLock(path.join(src, '.lock'), `repository ${src}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // The lock is how a mirror copies one state of the repository; without it a publish could
    // change the pool between the phases.
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') throw new UsageError(`--repo: cannot take the lock of ${quote(src)} (${code}): the mirror reads the repository under its publishers' lock, so it needs write access to ${path.join(src, '.lock')}`);
    throw err;
  }
  try {
    stopOrphans(srcArg);
    const snapshot = servedStamp(src)!;
    const reports: DestinationReport[] = [];
    for (const t of targets) {
      const t0 = Date.now();
      const rep: DestinationReport = { dest: t.label, kind: t.dest.kind, files: 0, bytes: 0, sentBytes: 0, deleted: 0, seconds: 0 };
      if (opts.verifyOnly) {
        rep.verify = await verifyOne(srcArg, t);
      } else {
        rep.phases = await syncOne(srcArg, t, opts);
        for (const p of rep.phases) {
          rep.files += p.files;
          rep.bytes += p.bytes;
          rep.sentBytes += p.sentBytes;
          rep.deleted += p.deleted;
        }
      }
      rep.seconds = (Date.now() - t0) / 1000;
      reports.push(rep);
    }
    return { source: src, snapshot, destinations: reports, ok: reports.every((r) => r.verify?.ok !== false) };
  } finally {
    unlock();
  }
}

// --- mirrors pushed by nightly and promote ---------------------------------------------------

/** One destination's outcome after a publish, for the nightly's report and promote's result. */
export interface MirrorOutcome {
  /** The destination as reported (a local one made absolute). */
  dest: string;
  ok: boolean;
  /** The snapshot it serves now, the source's (when it was pushed). */
  snapshot?: string;
  /** Files and bytes sent, files deleted (when it was pushed). */
  files?: number;
  bytes?: number;
  deleted?: number;
  seconds: number;
  /** Why it failed: the error's text, which names the destination. */
  error?: string;
}

/** rsync must be there before a nightly builds for hours or a promotion switches production. */
export async function checkMirrorTool(): Promise<void> {
  if (!(await haveTool('rsync'))) throw new ToolMissingError(missingToolMessage('rsync'));
}

/**
 * `--mirror DEST` of nightly and promote, checked before anything is built or promoted (UsageError,
 * exit 2): what `checkDestinations` can tell without contacting a destination. Whether a remote one
 * answers, or takes writes, shows only when it is pushed to; that is a failed push, not bad input.
 * Returns the destinations as the report names them.
 */
export function checkMirrorDestinations(repo: string, given: string[]): string[] {
  if (given.length === 0) return [];
  return checkDestinations(repo, given, '--mirror').map((t) => t.label);
}

/**
 * After a publish: pushes the repository to each destination in turn, each one a mirror run of
 * its own (its own lock, its own four phases). A destination that fails is recorded and the next
 * one still gets its push: one dead mirror must not keep the others stale. An interrupt stops it
 * (thrown, as everywhere else); the outcomes so far are in `out`.
 */
export async function pushToMirrors(repo: string, dests: string[], out: MirrorOutcome[] = []): Promise<MirrorOutcome[]> {
  for (const dest of dests) {
    const t0 = Date.now();
    try {
      checkInterrupted();
      const r = await mirror(repo, [dest], { option: '--mirror' });
      const d = r.destinations[0]!;
      out.push({ dest: d.dest, ok: true, snapshot: r.snapshot, files: d.files, bytes: d.bytes, deleted: d.deleted, seconds: d.seconds });
    } catch (err) {
      if (err instanceof OstError && err.exitCode === EXIT_INTERRUPTED) throw err;
      // Named by destination whatever failed: rsync's own lines do not always say which.
      const error = `mirror ${dest}: ${err instanceof Error ? err.message : String(err)}`;
      log.error(error);
      out.push({ dest, ok: false, seconds: (Date.now() - t0) / 1000, error });
    }
  }
  return out;
}

/** The outcomes as one line per mirror, for reports and logs. */
export function describeOutcome(m: MirrorOutcome): string {
  if (!m.ok) return `mirror ${m.dest}: FAILED: ${(m.error ?? '').split('\n')[0]!.replace(`mirror ${m.dest}: `, '')}`;
  return `mirror ${m.dest}: serving snapshot ${m.snapshot}; sent ${m.files} file(s), ${m.bytes} byte(s), deleted ${m.deleted}, in ${m.seconds.toFixed(1)} s`;
}
