// What the command modules share: the option sets several commands take, and how a result is
// printed (--json on stdout, or for people on stderr through the log).
import type { Command } from 'commander';
import { UsageError, quote } from '../errors.js';
import { log } from '../log.js';
import { DEFAULT_LAYERS_DIR, DEFAULT_REPO_DIR, DEFAULT_SET } from '../paths.js';
import type { BuildPlan } from '../plan/plan.js';
import type { PublishOptions } from '../publish/publish.js';
import { parseUsedWithin, usedPin } from '../publish/usage.js';
import { Store, defaultStoreDir } from '../store.js';

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
 * as the .repo file's baseurl holds them (and as publish reads the last ones back from it). The first
 * --url replaces the environment's default instead of adding to it. Each must be a URL dnf fetches.
 */
export function repeatedUrl(): (value: string, previous: string | undefined) => string {
  let given = false;
  return (value, previous) => {
    let scheme = '';
    try {
      scheme = new URL(value).protocol;
    } catch {
      // Reported below.
    }
    if (!['http:', 'https:', 'ftp:', 'file:'].includes(scheme)) throw new UsageError(`--url: ${quote(value)} is not an http(s)://, ftp:// or file:// URL`);
    const all = given && previous ? `${previous} ${value}` : value;
    given = true;
    return all;
  };
}

/** The options of every command that writes a repository (publish, prune, nightly). */
export const withPublishing = (c: Command): Command =>
  c
    .option('-r, --repo <dir>', 'repository directory', DEFAULT_REPO_DIR)
    .option('--sign-key <key>', 'gpg key (id, fingerprint or e-mail, from GNUPGHOME) that signs packages and repomd.xml [env OST_IMAGES_SIGN_KEY]', process.env.OST_IMAGES_SIGN_KEY)
    .option('--unsigned', 'publish unsigned into a repository that was signed (refused otherwise)')
    .option('--keep-used-within <days>', 'with --keep: also keep every build downloaded within DAYS days (see ost-images usage) and every build it requires')
    .option('--url <url>', 'base URL test machines reach the repository at, for ost-images.repo; repeat it for mirrors, in the order dnf is to try them [env OST_IMAGES_REPO_URL, several separated by spaces; default: the last ones, else file://]', repeatedUrl(), process.env.OST_IMAGES_REPO_URL);

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

export function publishOpts(o: PublishCli & { keep?: string }): PublishOptions {
  const days = parseUsedWithin(o.keepUsedWithin);
  if (days !== undefined && o.keep === undefined) throw new UsageError('--keep-used-within goes with --keep (it widens what retention keeps)');
  // An empty --sign-key or --url (e.g. an exported but empty variable) means none.
  return { signKey: o.signKey || undefined, unsigned: o.unsigned, url: o.url || undefined, pin: days === undefined ? undefined : usedPin(o.repo, days).pin };
}

export function parseKeep(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(v)) throw new UsageError(`--keep: '${v}' is not a positive whole number`);
  return Number(v);
}
