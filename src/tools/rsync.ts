// rsync: pushes a repository to its mirrors (local directories, rsync daemons, hosts over ssh).
//
// Quirks this module relies on, checked on rsync 3.5.0 (see docs/repository.md, "Mirrors"):
// - A file is written under a temporary name (`.<name>.XXXXXX`) in its directory and renamed into
//   place when complete (we never pass --inplace, --partial or --append). A killed rsync leaves
//   the temporary file, never a half file under the final name.
// - An existing symlink whose target changed is replaced by creating the new link under a
//   temporary name (`.<name>.<pid>`) and renaming it over the old one: one rename(2), so a reader
//   sees the old target or the new one (strace: symlinkat(".current.27196") then
//   renameat(".current.27196", "current"); locally and through the daemon).
// - A daemon module with `use chroot = no` "munges" symlinks by default (prefixes
//   /rsyncd-munged/ to every target), which breaks a served repository: a mirror module must
//   say `munge symlinks = no` (or run chrooted).
// - Over a remote shell (and through a daemon) rsync creates only the last directory of the
//   destination path (`mkdir ".../a/b" failed: No such file or directory`, exit 11, when a/ is
//   missing); --mkpath would create the rest but needs rsync >= 3.2.3 on the mirror host too
//   (EL8 has 3.1.3), so the mirror checks the parent instead.
// - The remote shell is `--rsh` (rsync's -e), else the RSYNC_RSH environment variable, else ssh.
//   run() hands rsync a small explicit environment, so RSYNC_RSH would never reach it: the
//   mirror resolves the command itself and passes it as --rsh. rsync splits that string into
//   words itself (spaces separate, single and double quotes group; no shell is involved).
import path from 'node:path';
import { UsageError, quote } from '../core/errors.js';
import { optionLikeProblem } from '../input/args.js';
import { maskUrl } from '../input/urls.js';
import { run, type RunOptions, type RunResult } from './run.js';

export type Destination =
  | { kind: 'local'; path: string }
  | { kind: 'daemon'; host: string; port?: number; module: string; path: string }
  | { kind: 'ssh'; host: string; path: string };

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;

/**
 * A `--to` value: `rsync://host[:port]/module[/path]` (an rsync daemon), `[user@]host:path` (ssh),
 * or a local directory. rsync itself reads any `x:y` before the first slash as a remote host, so
 * a local directory whose name holds a colon must be written `./a:b`.
 */
export function parseDestination(text: string, option = '--to'): Destination {
  const d = readDestination(text);
  if (typeof d === 'string') throw new UsageError(`${option}: ${quote(maskUrl(text))} ${d}`);
  return d;
}

/**
 * The destination `text` names, or why it names none (the words that follow the quoted value in a
 * message: "is empty"). For checks that report problems their own way (the CI settings file).
 */
export function readDestination(text: string): Destination | string {
  if (text.trim() === '') return 'is empty';
  if (/[\u0000-\u001f\u007f]/.test(text)) return 'holds a control character';
  if (/^rsync:/i.test(text)) {
    const m = /^rsync:\/\/([^/]+)\/([^/]+)((?:\/[^/]*)*)$/.exec(text);
    if (!m) return 'is not rsync://host[:port]/module[/path]';
    const [, hostPort, module, rest] = m;
    // A password there would be repeated in logs and process lists; the daemon's own login
    // (RSYNC_PASSWORD) is not passed on to rsync here.
    if (hostPort!.includes('@')) return 'names a user or password; a mirror module is written without a login here (rsync://host[:port]/module/path)';
    const hp = /^(.+?)(?::([0-9]+))?$/.exec(hostPort!)!;
    const host = hp[1]!;
    if (!HOST.test(host)) return `names no valid host (${quote(host)})`;
    let port: number | undefined;
    if (hp[2] !== undefined) {
      port = Number(hp[2]);
      if (!(port >= 1 && port <= 65535)) return `has port ${hp[2]}, not 1-65535`;
    }
    const segments = rest!.split('/').filter(Boolean);
    if ([module!, ...segments].some((s) => s === '.' || s === '..')) return "has '.' or '..' in its path";
    return { kind: 'daemon', host, port, module: module!, path: segments.join('/') };
  }
  if (/^[^/]*::/.test(text)) return 'uses the host::module form; write it rsync://host/module/path';
  if (/^[^/@:]+:[^/]*@[^/]*:/.test(text)) return 'holds a password (user:password@host:path); rsync over ssh logs in with a key: [user@]host:path';
  // rsync would take it as an option, not as a directory.
  const dash = optionLikeProblem(text);
  if (dash) return `${dash}; for a directory of that name write ./${text}`;
  const ssh = /^(?:([^/@:]+)@)?([^/:]+):(.*)$/.exec(text);
  if (ssh) {
    const [, user, host, p] = ssh;
    if (!HOST.test(host!)) return `names no valid host (${quote(host!)})`;
    if (user !== undefined && !/^[A-Za-z0-9._-]+$/.test(user)) return `names no valid user (${quote(user)})`;
    if (p === '') return 'names no directory after the colon';
    return { kind: 'ssh', host: user ? `${user}@${host}` : host!, path: p! };
  }
  return { kind: 'local', path: text };
}

/** The destination as rsync's argument, ending in a slash (the directory itself, not a subdirectory). */
export function destinationArg(d: Destination): string {
  const slash = (p: string) => (p.endsWith('/') ? p : `${p}/`);
  switch (d.kind) {
    case 'local':
      return slash(d.path);
    case 'ssh':
      return `${d.host}:${slash(d.path)}`;
    case 'daemon':
      return `rsync://${d.host}${d.port ? `:${d.port}` : ''}/${d.module}/${d.path ? slash(d.path) : ''}`;
  }
}

/** For messages and reports: the destination as given, normalized. */
export function describeDestination(d: Destination): string {
  return destinationArg(d).replace(/\/$/, '') || '/';
}

export interface TransferOptions {
  /** rsync filter rules, in order (first match wins), each passed as one --filter argument. */
  filters: string[];
  /** Delete what the source does not have (receiver side; sender-side hidden files are not protected). */
  delete?: boolean;
  /** Compare by checksum instead of size and modification time. */
  checksum?: boolean;
  dryRun?: boolean;
  /** Print each file's name when its transfer starts (the fault hook waits for it). */
  progress?: boolean;
  /**
   * Off for --verify: with --hard-links rsync checks one name of a group of links and reports the
   * others as links to it, so a damaged pool file would be named under one of its names only.
   */
  hardLinks?: boolean;
  /** At most this many KiB per second (a mirror over a WAN link must not starve its other users). */
  bwlimit?: number;
  /** The remote shell of a [user@]host:path destination (`ssh -p 2222 -i KEY`); unset: rsync's default, ssh. */
  rsh?: string;
}

/** Seconds without I/O after which rsync gives up: a hung mirror must not hold the source's lock forever. */
export const IO_TIMEOUT_S = 600;

/**
 * The argv of one transfer from the source directory `src` (its contents) to `dest`.
 * -a: recursive, symlinks as symlinks, permissions, times, owner/group, devices.
 * --hard-links: a snapshot's packages are hard links of the pool's; without it a mirror would hold
 * every package once per snapshot. --numeric-ids: the mirror host's user names mean nothing here.
 * --itemize-changes-style out-format: one line per change, counted for the report and parsed by
 * --verify. --stats: totals for the report.
 */
export function transferArgs(src: string, dest: string, o: TransferOptions): string[] {
  const args = ['-a', ...(o.hardLinks === false ? [] : ['--hard-links']), '--numeric-ids', `--timeout=${IO_TIMEOUT_S}`, '--stats', '--no-human-readable', '--out-format=%i %n%L'];
  if (o.checksum) args.push('--checksum');
  if (o.delete) args.push('--delete');
  if (o.dryRun) args.push('--dry-run');
  if (o.progress) args.push('--progress');
  if (o.bwlimit !== undefined) args.push(`--bwlimit=${o.bwlimit}`);
  if (o.rsh !== undefined) args.push(`--rsh=${o.rsh}`);
  for (const f of o.filters) args.push(`--filter=${f}`);
  args.push(src.endsWith('/') ? src : `${src}/`, dest);
  return args;
}

/**
 * Copies one file into the destination directory (made when missing, as rsync makes the last
 * directory of a destination): the mirror's marker, before anything else is written there.
 */
export function fileArgs(file: string, dest: string, rsh?: string): string[] {
  return ['-a', '--numeric-ids', `--timeout=${IO_TIMEOUT_S}`, ...(rsh === undefined ? [] : [`--rsh=${rsh}`]), file, dest.endsWith('/') ? dest : `${dest}/`];
}

/** Lists the top level of a directory (local or remote) without changing anything. */
export function listArgs(dest: string, rsh?: string): string[] {
  return ['--list-only', '--no-human-readable', `--timeout=${IO_TIMEOUT_S}`, ...(rsh === undefined ? [] : [`--rsh=${rsh}`]), dest];
}

/**
 * The parent directory of a remote destination, as a destination: rsync creates the destination
 * itself but not its parent. Undefined where there is nothing to check: a local directory (the
 * mirror makes it with all its parents), a daemon module's own directory (the daemon's
 * configuration names it), the login directory of an ssh destination (`host:.`, `host:~`).
 */
export function parentDestination(d: Destination): Destination | undefined {
  switch (d.kind) {
    case 'local':
      return undefined;
    case 'ssh': {
      const p = d.path.replace(/\/+$/, '');
      if (p === '' || p === '.' || p === '~') return undefined;
      return { kind: 'ssh', host: d.host, path: path.posix.dirname(p) };
    }
    case 'daemon':
      return d.path === '' ? undefined : { ...d, path: path.posix.dirname(d.path) === '.' ? '' : path.posix.dirname(d.path) };
  }
}

/**
 * What ssh needs from the caller's environment that run()'s small base environment leaves out:
 * the agent's socket, where CI jobs usually keep a deploy key (ssh reads ~/.ssh from the passwd
 * entry's home directory, not from $HOME).
 */
export function remoteShellEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env.SSH_AUTH_SOCK ? { SSH_AUTH_SOCK: env.SSH_AUTH_SOCK } : {};
}

export interface TransferStats {
  /** Regular files sent (new or changed). */
  files: number;
  /** Their total size. */
  bytes: number;
  /** Bytes that went over the wire (after rsync's delta transfer). */
  sentBytes: number;
  deleted: number;
}

export function parseStats(output: string): TransferStats {
  const num = (label: string): number => {
    const m = new RegExp(`^${label}: ([0-9,]+)`, 'm').exec(output);
    return m ? Number(m[1]!.replace(/,/g, '')) : 0;
  };
  return {
    files: num('Number of regular files transferred'),
    bytes: num('Total transferred file size'),
    sentBytes: num('Total bytes sent'),
    deleted: num('Number of deleted files'),
  };
}

export interface Differences {
  /** Present at both ends with other contents (or another symlink target). */
  differing: string[];
  /** At the source, not at the destination. */
  missing: string[];
  /** At the destination, not at the source. */
  extra: string[];
}

/**
 * Reads the itemized lines of a `--checksum --dry-run --delete` run: what would be sent differs or
 * is missing, what would be deleted is extra. Attribute-only lines (`.d..t......`: a directory's
 * time) are not differences of content.
 */
export function parseItemized(output: string): Differences {
  const d: Differences = { differing: [], missing: [], extra: [] };
  for (const line of output.split('\n')) {
    const del = /^\*deleting +(.+)$/.exec(line);
    if (del) {
      d.extra.push(del[1]!);
      continue;
    }
    const m = /^([<>ch.*])([fdLDS])([^ ]{9}) (.+)$/.exec(line);
    if (!m) continue;
    const [, update, type, flags, rest] = m;
    const name = type === 'L' || update === 'h' ? rest!.split(/ (?:->|=>) /)[0]! : rest!;
    if (flags!.startsWith('+')) d.missing.push(name);
    else if (update === '>' || update === '<' || (update === 'c' && type !== 'd') || (update === 'h' && type === 'f')) d.differing.push(name);
  }
  for (const list of [d.differing, d.missing, d.extra]) list.sort();
  return d;
}

export async function rsync(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('rsync', args, opts);
}
