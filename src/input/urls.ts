// URLs users give: one parser for every option and setting that takes one (layer sets' mirrors
// and downloads, publish --url, the CI settings and variables, install --repo, --cache-repo), and
// one redaction of credentials for every message and log line.
//
// A URL is checked on the text as written, not only as WHATWG's lenient parser reads it: that
// parser silently drops tabs and line breaks (`http://x/\ngpgcheck=0` parses as
// `http://x/gpgcheck=0`), so a value that a .repo file would split into two lines, or two base
// URLs, passes it. RFC 3986's characters only: no space, control character, quote, backslash,
// `<>{}|^` or backtick, and no non-ASCII letter; all of them can be percent-encoded.
import { redactSecrets } from '../core/redact.js';
import { UsageError, quote } from '../core/errors.js';

/** The schemes a URL in a layer set may use: what both the downloader and the package managers read. */
export const URL_SCHEMES = ['http', 'https', 'file'] as const;

export interface UrlRules {
  /** Allowed schemes (default URL_SCHEMES). */
  schemes?: readonly string[];
  /**
   * Where a user name or password would end up, for the message refusing it (default: build
   * records and published packages). With `credentials: true` they are allowed (and masked in
   * every message by redactSecrets).
   */
  secretsEndUpIn?: string;
  credentials?: boolean;
}

/**
 * Why `text` is not a URL the toolchain can use, or undefined when it is one: a scheme of
 * `rules.schemes` spelled out with '//', a host (file: none or localhost), RFC 3986 characters.
 */
export function urlProblem(text: string, rules: UrlRules = {}): string | undefined {
  const schemes = rules.schemes ?? URL_SCHEMES;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1];
  if (!scheme || !schemes.includes(scheme)) return `only ${schemes.map((s) => `${s}://`).join(', ').replace(/, ([^,]*)$/, ' and $1')} URLs are supported`;
  if (!text.startsWith(`${scheme}://`)) return `write it as ${scheme}://...`;
  const bad = /[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/.exec(text)?.[0];
  if (bad === ' ') return 'a URL has no spaces (write a space as %20)';
  if (bad !== undefined) return `${/[\u0000-\u001f\u007f-\u009f]/.test(bad) ? 'a control character' : `'${bad}'`} cannot appear in a URL as it is (percent-encode it)`;
  // WHATWG reads https:///x as https://x/; as written it has no host.
  if (scheme !== 'file' && /^[a-z]+:\/\/[/?#]/.test(text)) return `an ${scheme}:// URL needs a host name`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'it is not a well-formed URL';
  }
  if ((url.username || url.password) && !rules.credentials) {
    return `a user name or password in a URL would be recorded in ${rules.secretsEndUpIn ?? 'build records and published packages'}`;
  }
  if (scheme === 'file') {
    if (url.hostname !== '' && url.hostname !== 'localhost') return 'a file:// URL names a local path: file:///path (no host)';
  } else if (!url.hostname) {
    return `an ${scheme}:// URL needs a host name`;
  }
  return undefined;
}

/** Why `text` is no usable URL, as a message quoting it (its password masked), or undefined. */
export function urlMessage(text: string, rules: UrlRules = {}): string | undefined {
  const problem = urlProblem(text, rules);
  return problem === undefined ? undefined : `${quote(maskUrl(text))} is not a usable URL: ${problem}`;
}

/** An option's URL; bad input (UsageError, exit 2) naming the option and the value, its password masked. */
export function parseUrl(option: string, text: string, rules: UrlRules = {}): string {
  const message = urlMessage(text, rules);
  if (message) throw new UsageError(`${option}: ${message}`);
  return text;
}

/**
 * Several URLs in one value, separated by white space (publish --url given several times, or
 * OST_IMAGES_REPO_URL): each must be a URL, so that no part of a value becomes a line or a base
 * URL of its own. Returns them joined by single spaces.
 */
export function parseUrlList(option: string, text: string, rules: UrlRules = {}): string {
  const urls = text.split(/[ \t]+/).filter(Boolean);
  if (urls.length === 0) throw new UsageError(`${option}: is empty`);
  // Line breaks and other controls are not separators: the URL holding one is refused.
  return urls.map((u) => parseUrl(option, u, rules)).join(' ');
}

/** A URL (or any text holding URLs) with every password replaced by ***: `rsync://user:***@host/m`. */
export function maskUrl(text: string): string {
  return redactSecrets(text);
}

