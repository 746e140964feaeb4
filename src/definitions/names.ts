// Name rules shared by validation, naming and the spec view model. RPM's own parser is more
// permissive in places, but these are the characters every tool in the chain (rpm, dnf,
// createrepo_c, file systems, URLs) handles without quoting.

/** RPM Name: letters, digits and . _ + - ; must start with a letter or digit. */
export const RPM_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
/** RPM Version / Release: no '-', which separates them. */
export const RPM_VERSION = /^[A-Za-z0-9][A-Za-z0-9._+~^]*$/;
/** Debian package names (Policy 5.6.1): lower case, digits, + - . ; at least two characters. */
export const DEB_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** Layer and set names become parts of RPM names and file names. */
export const LAYER_NAME = /^[a-z0-9][a-z0-9._+-]*$/;
/** rpm payload, e.g. w6T0.zstdio, w9.xzdio, w.ufdio. */
export const PAYLOAD = /^w[0-9]*(T[0-9]*)?(L[0-9]+)?\.(zstdio|xzdio|gzdio|bzdio|ufdio)$/;
export const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function guestPackageNameRule(family: 'debian' | 'el'): { re: RegExp; what: string } {
  return family === 'debian'
    ? { re: DEB_NAME, what: 'Debian package name (lower-case letters, digits, + - .)' }
    : { re: RPM_NAME, what: 'RPM package name (letters, digits, . _ + -)' };
}

/** Parses "8G", "512M", "10737418240" into bytes. */
export function parseSize(text: string): number | undefined {
  const m = /^([0-9]+)([KMGT]?)$/.exec(text.trim());
  if (!m) return undefined;
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2] as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * mult;
}

/** Debian suites and codenames (bookworm, bookworm-updates, stable): they reach mmdebstrap's command line. */
export const DEB_SUITE = /^[a-z0-9][a-z0-9.-]*$/;
/** Archive components (main, non-free-firmware, updates/main). */
export const DEB_COMPONENT = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;
/** An install directory: absolute, plain components (rpm would glob `*?[]{}` and expand `%`). */
export const INSTALL_DIR = /^(\/[A-Za-z0-9._+-]+)+$/;

/** Control characters a text field (description, name, license) must not hold; tab and newline are folded. */
export const TEXT_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** A known difference's path: absolute, plain names, with `*` and `**` as wildcards. */
export const KNOWN_DIFFERENCE_PATH = /^(\/(\*\*|[A-Za-z0-9._+@:~*-]+))+$/;

/**
 * Bounds of a set's `source_date`. Not before 2020-01-01, the time the shipped root key files carry
 * (builder/root-key.ts): clamped to an earlier epoch, the copies of two builds would differ. After
 * 2099 is a typo.
 */
export const SOURCE_DATE_MIN = Date.UTC(2020, 0, 1) / 1000;
export const SOURCE_DATE_MAX = Date.UTC(2099, 11, 31, 23, 59, 59) / 1000;

/**
 * A set's `source_date`, "2026-12-01" or "2026-12-01T06:00:00Z" (UTC only: a time zone would make
 * the same text mean another instant on another builder), as seconds since the epoch.
 */
export function parseSourceDate(text: string): number | undefined {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})Z)?$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as number[];
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
  const back = new Date(ms);
  // Date.UTC rolls 2026-02-31 over into March: such a date is refused, not moved.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d || h! > 23 || mi! > 59 || s! > 59) return undefined;
  const sec = ms / 1000;
  return sec >= SOURCE_DATE_MIN && sec <= SOURCE_DATE_MAX ? sec : undefined;
}
