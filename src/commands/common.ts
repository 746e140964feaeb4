// What the command modules share: the option sets several commands take, the layer set a command
// works on, and how a result is printed (--json on stdout, or for people on stderr through the log).
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import { DEFAULT_LAYERS_DIR, DEFAULT_REPO_DIR, DEFAULT_SET } from '../core/paths.js';
import type { LayerSet } from '../definitions/types.js';
import type { BuildPlan } from '../plan/plan.js';
import type { PublishOptions } from '../publish/publish.js';
import { DAYS, KEEP, parseOptionalNumber } from '../input/numbers.js';
import { existingDir } from '../input/paths.js';
import { parseUrl, parseUrlList } from '../input/urls.js';
import { BASE_URL } from '../repository/repo-file.js';
import { Store, defaultStoreDir } from '../store/store.js';

/** The options of withCommon, as commander hands them to an action. */
export interface Common {
  set: string;
  layersDir: string;
  store: string;
  json?: boolean;
}

/** The options of withPublishing. */
export interface PublishCli {
  repo: string;
  signKey?: string;
  unsigned?: boolean;
  url?: string;
  keepUsedWithin?: string;
}

/** The options of every command that works on a layer set. */
export const withCommon = (c: Command): Command =>
  c
    .option('-s, --set <name>', 'layer set (a folder under the layers directory)', DEFAULT_SET)
    .option('--layers-dir <dir>', 'where layer sets are defined', DEFAULT_LAYERS_DIR)
    .option('--store <dir>', 'layer store: images, build records, RPMs', defaultStoreDir())
    .option('--json', 'machine-readable result on stdout');

/**
 * `--url` given several times (a primary and its mirrors): one string, the URLs separated by spaces,
 * as the .repo file's baseurl holds them (and as publish reads the last ones back from it). Each
 * must be a URL dnf fetches (BASE_URL).
 */
export function repeatedUrl(): (value: string, previous: string | undefined) => string {
  return (value, previous) => {
    parseUrl('--url', value, BASE_URL);
    return previous ? `${previous} ${value}` : value;
  };
}

/**
 * The base URLs in force: `--url` as given, else OST_IMAGES_REPO_URL (several separated by
 * spaces), each checked as BASE_URL, so that no part of a value becomes a line or a base URL of
 * its own in ost-images.repo. Empty: none (publish keeps the last ones).
 */
export function baseUrls(flag: string | undefined, env: string | undefined = process.env.OST_IMAGES_REPO_URL): string | undefined {
  if (flag !== undefined && flag !== '') return parseUrlList('--url', flag, BASE_URL);
  if (env === undefined || env.trim() === '') return undefined;
  return parseUrlList('OST_IMAGES_REPO_URL', env, BASE_URL);
}

/** The options of every command that writes a repository (publish, prune, nightly). */
export const withPublishing = (c: Command): Command =>
  c
    .option('-r, --repo <dir>', 'repository directory', DEFAULT_REPO_DIR)
    .option('--sign-key <key>', 'gpg key (id, fingerprint or e-mail, from GNUPGHOME) that signs packages and repomd.xml [env OST_IMAGES_SIGN_KEY]', process.env.OST_IMAGES_SIGN_KEY)
    .option('--unsigned', 'publish unsigned into a repository that was signed (refused otherwise)')
    .option('--keep-used-within <days>', 'with --keep: also keep every build downloaded within DAYS days (see ost-images usage) and every build it requires')
    .option('--url <url>', 'base URL test machines reach the repository at, for ost-images.repo; repeat it for mirrors, in the order dnf is to try them [env OST_IMAGES_REPO_URL, several separated by spaces; default: the last ones, else file://]', repeatedUrl());

/**
 * A directory option that must exist (`--root`, `--images-dir`, `--vm-dir`): a typo must be bad
 * input, not "nothing there" (exit 0 forever in a cron job). Left at its built-in default, a
 * missing one stands for an empty one (a machine where nothing was installed or made yet); set on
 * the command line or through `env`, it must exist. Returns it absolute.
 */
export function existingDirOption(cmd: Command, key: string, option: string, env?: string): string {
  const value = String(cmd.getOptionValue(key));
  if (cmd.getOptionValueSource(key) === 'cli') return existingDir(option, value);
  if (env !== undefined && process.env[env]) return existingDir(env, value);
  return existingDir(option, value, { mayBeMissing: true });
}

/** commander's collector of a repeatable option: every value, in the order given. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** The help text of `--mirror` (nightly, promote): what it does and what a failure means. */
export const MIRROR_HELP =
  'after a successful publish (also one with nothing new, so a mirror that missed one catches up), push the repository to this mirror as `ost-images mirror --to` does: a local directory, rsync://host[:port]/module/path or [user@]host:path (its remote shell from RSYNC_RSH, else ssh); repeat for several. A mirror that fails does not undo the publish; the run then exits 1 naming it [env OST_IMAGES_MIRROR, several separated by spaces]';

/**
 * The mirrors of nightly and promote: `--mirror` as given (all of them; the variable is then not
 * read), else OST_IMAGES_MIRROR split at white space. Empty: none.
 */
export function mirrorsGiven(flags: string[] | undefined, env: string | undefined): string[] {
  if (flags !== undefined) return flags;
  return (env ?? '').split(/\s+/).filter((d) => d !== '');
}

let loaded: { key: string; ls: LayerSet } | undefined;

/**
 * The layer set a command works on (`--layers-dir`, `--set`), read and checked once per process:
 * the check of a command's tools (commands/tools.ts) reads it before the command does when what
 * the command runs depends on it (how the set's bases are made).
 */
export async function layerSet(o: { layersDir: string; set: string }): Promise<LayerSet> {
  const key = JSON.stringify([path.resolve(o.layersDir), o.set]);
  if (loaded?.key !== key) {
    const { loadLayerSet } = await import('../definitions/load.js');
    loaded = { key, ls: loadLayerSet(o.layersDir, o.set) };
  }
  return loaded.ls;
}

export function emit(opts: { json?: boolean }, value: unknown, human: () => void): void {
  if (opts.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else human();
}

/** `plan` and `build --dry-run` print the same thing. */
export function printPlan(o: { json?: boolean }, plan: BuildPlan): void {
  emit(o, plan, () => {
    for (const e of plan.entries) {
      log.info(`${e.layer}: ${e.action} (${e.reason}) key ${e.key.slice(0, 12)}`);
      for (const c of e.changes) log.info(`    ${c}`);
    }
  });
}

export function currentBuilds(store: Store, set: string, layers: string[]) {
  return new Map(layers.map((l) => [l, store.current(set, l)]));
}

/** Every numeric and URL option of the repository writers, checked before any work. */
export function publishOpts(o: PublishCli & { keep?: string }): PublishOptions & { keep?: number } {
  const keep = parseKeep(o.keep);
  const days = parseOptionalNumber('--keep-used-within', o.keepUsedWithin, DAYS);
  if (days !== undefined && keep === undefined) throw new UsageError('--keep-used-within goes with --keep (it widens what retention keeps)');
  // An empty --sign-key or --url (e.g. an exported but empty variable) means none.
  // The usage record is read by publish itself, under the repository lock, when it plans retention.
  return { keep, signKey: o.signKey || undefined, unsigned: o.unsigned, url: baseUrls(o.url), keepUsedWithin: days };
}

/** `--keep N`: builds to keep (KEEP). */
export function parseKeep(v: string | undefined): number | undefined {
  return parseOptionalNumber('--keep', v, KEEP);
}
