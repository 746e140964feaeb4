// set.yaml: its rules (what the schema in schema.ts cannot say), the facts layer checks may use of
// it, and the typed SetDef, made only from a set.yaml with no problem at all.
import path from 'node:path';
import { type ConfigIssue, quote } from '../core/errors.js';
import { debSuiteRule, textRule, urlRule } from './common-rules.js';
import { checkFile, isObj, type FileKind, type Rule } from './kernel.js';
import { NAME_MAX } from './limits.js';
import { INSTALL_DIR, PAYLOAD, RPM_NAME, RPM_VERSION, parseSize, parseSourceDate } from './names.js';
import { ENV_NAME, setSchema } from './schema.js';
import type { DistroFamily, SetDef } from './types.js';
import type { Parsed } from './yaml-file.js';

export const SET_FILE = 'set.yaml';

/** The base disk: at least 1 GiB (a minimal install), at most 16 TiB (anything larger is a typo). */
export const MIN_IMAGE_BYTES = 1024 ** 3;
export const MAX_IMAGE_BYTES = 16 * 1024 ** 4;
/** A guest path (upload target): PATH_MAX, and NAME_MAX per component. */
export const PATH_MAX = 4096;

/**
 * What layer checks may use of set.yaml. Each value is there only when set.yaml gives it validly;
 * nothing is filled in for a broken set.yaml.
 */
export interface SetFacts {
  family?: DistroFamily;
  codename?: string;
  /** distro is a mapping without a mirror (a mmdebstrap base then has none to install from). */
  mirrorMissing: boolean;
  prefix?: string;
  version?: string;
  /** The valid entries of `flatten`. */
  flatten: string[];
}

/** What is known of a set.yaml that does not read: nothing. */
export const NO_FACTS: SetFacts = Object.freeze({ mirrorMissing: false, flatten: [] }) as SetFacts;

const installDirProblem = (v: string): string | undefined => {
  const parts = v.split('/');
  if (!INSTALL_DIR.test(v) || parts.includes('.') || parts.includes('..')) {
    return `${quote(v)} must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, quotes, '%', wildcards, '.' or '..')`;
  }
  if (parts.some((c) => c.length > NAME_MAX) || v.length > PATH_MAX - 1 - NAME_MAX - 1) {
    return `${quote(v)} is too long: at most ${NAME_MAX} bytes per folder name and ${PATH_MAX - 1 - NAME_MAX - 1} in all (file names of up to ${NAME_MAX} bytes go in it)`;
  }
  return undefined;
};

const sizeOk = (v: string): boolean => {
  const bytes = parseSize(v);
  return bytes !== undefined && bytes >= MIN_IMAGE_BYTES && bytes <= MAX_IMAGE_BYTES;
};

/** set.yaml's rules, key by key, in the order its problems on one line are listed. */
const SET_RULES: Rule<void>[] = [
  textRule('.description'),
  textRule('.distro.name'),
  {
    at: '.distro.version',
    type: 'string',
    replaces: ['pattern'],
    check: (v) => RPM_VERSION.test(v),
    message: (v) => `${quote(v)} is not a valid RPM version (letters, digits, . _ + ~ ^; no '-')`,
  },
  debSuiteRule('.distro.codename'),
  {
    at: '.distro',
    type: 'mapping',
    check: (d) => !(d.family === 'debian' && d.codename === undefined),
    message: () => "missing required key 'codename' (the Debian release suite, e.g. bookworm)",
  },
  urlRule('.distro.mirror'),
  {
    at: '.package.prefix',
    type: 'string',
    replaces: ['pattern'],
    check: (v) => RPM_NAME.test(v),
    message: (v) => `${quote(v)} is not a valid RPM package name (letters, digits, . _ + -)`,
  },
  { at: '.package.install_dir', type: 'string', replaces: ['pattern'], problem: installDirProblem },
  {
    at: '.package.payload',
    type: 'string',
    replaces: ['pattern'],
    check: (v) => PAYLOAD.test(v),
    message: (v) => `${quote(v)} is not an rpm payload setting like w6T0.zstdio, w9T0.xzdio or w.ufdio`,
  },
  textRule('.package.license'),
  // Absent, it is the documented default, 8G.
  { at: '.image.size', type: 'string', replaces: ['pattern'], check: sizeOk, message: (v) => `${quote(v)} must be a size from 1G to 16T, like 8G or 10240M` },
  {
    at: '.source_date',
    type: 'string',
    replaces: ['pattern'],
    check: (v) => parseSourceDate(v) !== undefined,
    message: (v) => `${quote(v)} must be a UTC date from 2020-01-01 to 2099-12-31, like 2026-12-01 or 2026-12-01T06:00:00Z`,
  },
  {
    at: '.ssh_key',
    type: 'mapping',
    check: (k) => (typeof k.file === 'string') !== (typeof k.env === 'string'),
    message: () => "give exactly one of 'file' (a key file) and 'env' (a variable holding its path)",
  },
  {
    at: '.ssh_key.env',
    type: 'string',
    replaces: ['pattern'],
    check: (v) => ENV_NAME.test(v),
    message: (v) => `${quote(v)} is not an environment variable name (letters, digits, _)`,
  },
  { at: '.ssh_key.file', type: 'string', check: (v) => v !== '' && !/[\u0000-\u001f\u007f]/.test(v), message: (v) => `${quote(v)} is not a file name` },
];

export const SET_KIND: FileKind<void> = { schema: setSchema, rules: SET_RULES };

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Checks a set.yaml that reads; its problems go to `issues`. Returns what layer checks may use of
 * it, and the SetDef when it has no problem.
 */
export function checkSet(name: string, dir: string, p: Parsed, issues: ConfigIssue[]): { facts: SetFacts; set?: SetDef } {
  const checked = checkFile(SET_KIND, p, undefined);
  issues.push(...checked.issues);
  if (!isObj(p.data)) return { facts: { ...NO_FACTS, flatten: [] } };
  const raw = p.data;
  const valid = (...segs: string[]) => str(checked.valid(segs));
  const family = valid('distro', 'family');
  const facts: SetFacts = {
    family: family === 'debian' || family === 'el' ? family : undefined,
    codename: valid('distro', 'codename'),
    mirrorMissing: isObj(raw.distro) && raw.distro.mirror === undefined,
    prefix: valid('package', 'prefix'),
    version: valid('distro', 'version'),
    flatten: Array.isArray(raw.flatten) ? raw.flatten.filter((l): l is string => typeof l === 'string') : [],
  };
  if (checked.issues.length > 0) return { facts };
  return { facts, set: setDef(name, dir, p) };
}

/** The typed set of a set.yaml without problems, defaults filled in. */
function setDef(name: string, dir: string, p: Parsed): SetDef {
  const r = p.data as {
    description?: string;
    distro: { family: DistroFamily; name: string; version: string; codename?: string; mirror?: string; arch?: 'x86_64' };
    image?: { size?: string };
    package: { prefix: string; default?: boolean; install_dir?: string; payload?: string; license?: string };
    flatten?: string[];
    source_date?: string;
    ssh_key?: { file?: string; env?: string };
  };
  const sourceDate = r.source_date === undefined ? undefined : parseSourceDate(r.source_date);
  const sshKey: SetDef['sshKey'] = r.ssh_key?.env !== undefined ? { env: r.ssh_key.env } : r.ssh_key?.file !== undefined ? { file: path.resolve(dir, r.ssh_key.file) } : undefined;
  return {
    name,
    dir,
    file: p.file,
    description: r.description ?? `${r.distro.name} ${r.distro.version} layered images`,
    distro: { ...r.distro, arch: r.distro.arch ?? 'x86_64' },
    image: { sizeBytes: parseSize(r.image?.size ?? '8G')! },
    package: {
      prefix: r.package.prefix,
      default: r.package.default ?? false,
      installDir: r.package.install_dir ?? `/usr/share/${r.package.prefix}`,
      payload: r.package.payload,
      license: r.package.license ?? 'Various',
    },
    flatten: r.flatten ?? [],
    ...(sshKey ? { sshKey } : {}),
    ...(sourceDate !== undefined ? { sourceDate } : {}),
  };
}
