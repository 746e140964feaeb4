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
