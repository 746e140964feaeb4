// Where the pipeline's jobs find the staging and production repositories, which run they belong
// to, and how they upload: read from the variables the generated pipeline sets (OST_IMAGES_STAGING,
// OST_IMAGES_STAGING_URL, OST_IMAGES_REPO, OST_IMAGES_REPO_URL, OST_IMAGES_UPLOAD, OST_IMAGES_RUN),
// each overridden by its flag. The pipeline writes every variable, an empty one meaning "none", so
// empty is unset here. Checked before anything runs: a bad value is bad input (exit 2).
import path from 'node:path';
import { RUN_ID } from '../records/gate.js';
import { pathToFileURL } from 'node:url';
import { UsageError, quote } from '../core/errors.js';
import { parseUrl } from '../input/urls.js';

export interface RepoLocation {
  /** The directory, where this machine can write it (shared file system); absent: read-only here. */
  dir?: string;
  /** How this machine reads it (http(s):// or file://). */
  url: string;
}

/** A flag's value, else the variable's; empty means not given. */
export function given(flag: string | undefined, env: string | undefined): string | undefined {
  const v = flag !== undefined ? flag : env;
  return v === undefined || v.trim() === '' ? undefined : v;
}

/**
 * A repository from its directory and URL: the URL defaults to the directory's file:// URL.
 * `what` names the flag and variable in messages.
 */
export function repoLocation(dir: string | undefined, url: string | undefined, what: { name: string; dirFlag: string; dirEnv: string; urlFlag: string; urlEnv: string }): RepoLocation {
  if (dir === undefined && url === undefined) {
    throw new UsageError(`${what.name}: give its directory (${what.dirFlag} or ${what.dirEnv}) or its URL (${what.urlFlag} or ${what.urlEnv})`);
  }
  if (dir !== undefined && /[\u0000-\u001f]/.test(dir)) throw new UsageError(`${what.dirFlag}: ${quote(dir)} holds a control character`);
  const abs = dir !== undefined ? path.resolve(dir) : undefined;
  return { dir: abs, url: url !== undefined ? parseUrl(what.urlFlag, url) : pathToFileURL(abs!).href };
}

export const STAGING = { name: 'the staging repository', dirFlag: '--staging', dirEnv: 'OST_IMAGES_STAGING', urlFlag: '--staging-url', urlEnv: 'OST_IMAGES_STAGING_URL' };
export const PRODUCTION = { name: 'the production repository', dirFlag: '--repo', dirEnv: 'OST_IMAGES_REPO', urlFlag: '--repo-url', urlEnv: 'OST_IMAGES_REPO_URL' };


export function runId(v: string | undefined): string {
  if (v === undefined) throw new UsageError('the pipeline run: give --run or set OST_IMAGES_RUN (the CI engine\'s pipeline id): gate records are kept per run');
  if (!RUN_ID.test(v)) throw new UsageError(`--run: ${quote(v)} is not a run id (letters, digits, '.', '_' and '-', at most 128, not starting with '.', '_' or '-')`);
  return v;
}

