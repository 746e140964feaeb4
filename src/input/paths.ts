// Paths users give: directories that must exist (a mistyped --root or --vm-dir must not read as
// "nothing there"), output files that may only be regular files, and file-system errors on such
// paths turned into bad input (exit 2) that names the option, the path and what is wrong, instead
// of a stack trace.
import { lstatSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { UsageError, quoteMiddle } from '../core/errors.js';
import { parseUrl } from './urls.js';

/** What an errno code means for a path a user gave, in words. */
const FS_PROBLEMS: Record<string, string> = {
  ENAMETOOLONG: 'the name is too long (at most 255 bytes per name, 4095 for the whole path)',
  ENOENT: 'does not exist (or a folder on its way does not)',
  ENOTDIR: 'a part of it is not a directory',
  EISDIR: 'is a directory, where a file is expected',
  EEXIST: 'exists, and is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'is on a read-only file system',
  ELOOP: 'has too many levels of symbolic links (a loop?)',
  ENXIO: 'is a device or socket nothing answers on',
  ENODEV: 'is a device',
};

/** The errno codes fsError turns into bad input. */
export const USER_PATH_CODES = new Set(Object.keys(FS_PROBLEMS));

/** A path as messages quote it: both ends kept, the end says what the file is. */
export const quotePath = (p: string): string => quoteMiddle(p);

/**
 * The UsageError for a file-system error on a path the user gave (`option` names where it came
 * from), or undefined when the error is not about the path (out of space, I/O errors): those are
 * failures, not bad input.
 */
export function fsError(option: string, file: string, err: unknown): UsageError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined || !USER_PATH_CODES.has(code)) return undefined;
  return new UsageError(`${option}: ${quotePath(file)}: ${FS_PROBLEMS[code]} (${code})`);
}

/** Runs `fn` on a user's path; its file-system errors on that path become bad input (fsError). */
export function onUserPath<T>(option: string, file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fsError(option, file, err) ?? err;
  }
}

/** onUserPath for asynchronous work. */
export async function onUserPathAsync<T>(option: string, file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fsError(option, file, err) ?? err;
  }
}

/** What a non-regular file is, for messages. */
export function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a regular file';
}

/**
 * A directory that must exist (an empty one is fine): its absolute path. Missing, not a directory,
 * or unusable: bad input naming the option. With `mayBeMissing` (an option left at its default
 * that nothing created yet), a missing one is fine too, and stands for an empty one.
 */
export function existingDir(option: string, dir: string, o: { mayBeMissing?: boolean } = {}): string {
  const abs = path.resolve(dir);
  let st: Stats;
  try {
    st = statSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && o.mayBeMissing) return abs;
    throw fsError(option, dir, err) ?? err;
  }
  if (!st.isDirectory()) throw new UsageError(`${option}: ${quotePath(dir)} is ${kindOf(st)}, not a directory`);
  return abs;
}

/** A file that must exist and be a regular file (symbolic links followed), to be read. */
export function existingFile(option: string, file: string): string {
  const st = onUserPath(option, file, () => statSync(file));
  if (!st.isFile()) throw new UsageError(`${option}: ${quotePath(file)} is ${kindOf(st)}, not a regular file`);
  return path.resolve(file);
}

/**
 * Writes an output file (`--out`): only ever a regular file, new or replacing a regular file
 * through `write`, which must write a temporary file beside it and rename it over (so a reader or
 * a crash never sees half of it). A symbolic link, FIFO, device, socket or directory at that path
 * is bad input: replacing `/dev/stdout` or a link by a regular file is never what was meant.
 * Errors on the path (its parent missing, too long, read-only) are bad input too.
 */
export function writeOutputFile(option: string, file: string, write: (abs: string) => void): string {
  const abs = checkOutputFile(option, file);
  onUserPath(option, file, () => write(abs));
  return abs;
}

/** What writeOutputFile checks first, for a command to call before its work: the absolute path. */
export function checkOutputFile(option: string, file: string): string {
  const abs = path.resolve(file);
  const st = onUserPath(option, file, () => lstatSync(abs, { throwIfNoEntry: false }));
  if (st && !st.isFile()) {
    throw new UsageError(`${option}: ${quotePath(file)} is ${kindOf(st)}; ${option} writes only a regular file (a new one, or replacing one)`);
  }
  return abs;
}

/**
 * A repository given as a directory or a URL (`install --repo`, `--cache-repo`): a URL is checked
 * as one (a password allowed: a private repository; it is masked in every message), a directory
 * must exist. Returns it as given.
 */
export function repoDirOrUrl(option: string, text: string): string {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) return parseUrl(option, text, { schemes: ['http', 'https', 'ftp', 'file'], credentials: true });
  existingDir(option, text);
  return text;
}
