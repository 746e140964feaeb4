// Reads layers/<set>/set.yaml and layers/<set>/<layer>/layer.yaml, validates all of it and returns
// a typed LayerSet. Every problem in every file is collected and reported together (ConfigError,
// exit 2); nothing is written while loading.
//
// How the checks are arranged, so that "every problem at once" holds and no message is a guess:
// - Reading (yaml-file.ts) is the only step that can make a file unusable: an unreadable, too
//   large, non-UTF-8 or malformed file is reported and its content is not checked further.
// - The schema (structure and types) and the semantic checks (names, URLs, files, the layer graph,
//   name lengths) both run on every file that reads: a schema error in one key does not hide a bad
//   URL in another. Semantic checks read each value through a type guard and skip a value the
//   schema already rejected.
// - set.yaml's values reach the layer checks as SetFacts: each one only when set.yaml gives it
//   validly. A layer check that depends on a value set.yaml does not validly give is skipped, or
//   made with a rule that holds for every possible value; defaults are never filled in for a
//   broken set.yaml.
// - The typed LayerSet is built only when there is no issue at all.
import { closeSync, existsSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { ConfigError, type ConfigIssue, UsageError, describeValue, quote, quoteMiddle } from '../core/errors.js';
import { kickstartVars, renderKickstart } from './kickstart-template.js';
import { layerSchema, setSchema } from './schema.js';
import type { BaseDef, DistroFamily, KickstartBase, LayerDef, LayerSet, SetDef, Step } from './types.js';
import {
  DEB_COMPONENT,
  DEB_SUITE,
  HOSTNAME,
  INSTALL_DIR,
  LAYER_NAME,
  PAYLOAD,
  RPM_NAME,
  RPM_VERSION,
  TEXT_CONTROL,
  KNOWN_DIFFERENCE_PATH,
  guestPackageNameRule,
  parseSize,
  parseSourceDate,
} from './names.js';
import { onUserPath } from '../input/paths.js';
import { urlMessage } from '../input/urls.js';
import { NAME_MAX, derivedNames, maxLayerNameLength, tooLong, type NamePart, type NameParts } from './limits.js';
import { MAX_FILE_BYTES, formatPath, parseYamlFile, readText, type Parsed, type Seg } from './yaml-file.js';

export { formatPath };
export const SET_FILE = 'set.yaml';
export const LAYER_FILE = 'layer.yaml';

/** The base disk: at least 1 GiB (a minimal install), at most 16 TiB (anything larger is a typo). */
export const MIN_IMAGE_BYTES = 1024 ** 3;
export const MAX_IMAGE_BYTES = 16 * 1024 ** 4;
/** Kernel arguments a layer adds, joined: well inside x86's 2048-byte command line with GRUB's own. */
export const MAX_KERNEL_CMDLINE_BYTES = 1024;
/** A kickstart template is read whole and rendered at build time. */
export const MAX_TEMPLATE_BYTES = 256 * 1024;
/** A guest path (upload target): PATH_MAX, and NAME_MAX per component. */
const PATH_MAX = 4096;

// verbose: error objects carry their schema, from which 'unknown key' lists the allowed keys.
// validateSchema: the schemas are fixed; checking them against the JSON Schema meta-schema on
// every start cost a tenth of a build that reuses every layer, so a unit test does it instead.
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true, validateSchema: false });
const validateSetShape = ajv.compile(setSchema);
const validateLayerShape = ajv.compile(layerSchema);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** The string items of a list, with their indexes (the others are the schema's to report). */
const strings = (v: unknown): [string, number][] => (Array.isArray(v) ? v.flatMap((x, i) => (typeof x === 'string' ? [[x, i] as [string, number]] : [])) : []);


function segsOf(instancePath: string): Seg[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

function valueAt(data: unknown, segs: Seg[]): unknown {
  let v: unknown = data;
  for (const s of segs) v = v && typeof v === 'object' ? (v as Obj)[s as string] : undefined;
  return v;
}

/** Levenshtein distance, for "did you mean" (keys are short; long ones are not compared). */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || b.length > 64) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Turns ajv's errors into messages a person can act on, each with its key path and line. */
function shapeIssues(p: Parsed, errors: ErrorObject[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const e of errors) {
    const segs = segsOf(e.instancePath);
    const value = valueAt(p.data, segs);
    let at = segs;
    let message: string;
    let atKey = false;
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        at = [...segs, extra];
        atKey = true;
        const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
        const near = allowed.find((a) => editDistance(a, extra) <= Math.min(2, a.length / 3));
        message = `unknown key ${quote(extra)} (${near ? `did you mean '${near}'? ` : ''}allowed: ${allowed.join(', ')})`;
        break;
      }
      case 'required':
        message = `missing required key '${(e.params as { missingProperty: string }).missingProperty}'`;
        break;
      case 'type':
        message = `must be ${e.params.type === 'array' ? 'a list' : e.params.type === 'object' ? 'a mapping' : `a ${e.params.type}`}, got ${describeValue(value)}`;
        break;
      case 'enum':
        message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}, got ${describeValue(value)}`;
        break;
      case 'const':
        message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}, got ${describeValue(value)}`;
        break;
      case 'minItems':
      case 'minLength':
        message = 'must not be empty';
        break;
      case 'minimum':
        message = `must be at least ${(e.params as { limit: number }).limit}, got ${describeValue(value)}`;
        break;
      case 'maximum':
        message = `must be at most ${(e.params as { limit: number }).limit}, got ${describeValue(value)}`;
        break;
      case 'uniqueItems': {
        const { i, j } = e.params as { i: number; j: number };
        const item = (value as unknown[])[i];
        message = `lists ${typeof item === 'string' ? quote(item) : describeValue(item)} twice (items ${j} and ${i})`;
        break;
      }
      case 'minProperties':
      case 'maxProperties':
        message = 'a step has exactly one of: install, upgrade, run, upload';
        break;
      default:
        message = e.message ?? e.keyword;
    }
    out.push({ file: p.file, path: formatPath(at), line: p.lineOf(at, atKey), message });
  }
  return out;
}

/** Collects issues for one file, located by key path (the line comes from the file). */
class FileIssues {
  constructor(
    readonly p: Parsed,
    private readonly sink: ConfigIssue[],
  ) {}
  add(segs: Seg[], message: string): void {
    this.sink.push({ file: this.p.file, path: formatPath(segs), line: this.p.lineOf(segs), message });
  }
  /** A URL the set names: well-formed http(s) or file (see urlProblem). */
  url(segs: Seg[], value: string): boolean {
    const message = urlMessage(value);
    if (message) this.add(segs, message);
    return !message;
  }
  /** Free text that ends up in package metadata: no control characters (rpm would choke on them). */
  text(segs: Seg[], value: unknown): void {
    if (typeof value === 'string' && TEXT_CONTROL.test(value)) this.add(segs, `${quote(value)} holds a control character`);
  }
}

/** The bytes of a file a step uses are part of the layer's inputs (its key). Read in pieces: it may be large. */
function digest(file: string): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** A file inside the layer folder; refuses absolute paths, escapes with '..' and links out of it. */
function layerFile(layerDir: string, rel: string, at: Seg[], fi: FileIssues, what: string): string | undefined {
  if (path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) {
    fi.add(at, `${what} ${quote(rel)} must be a path inside the layer folder (no absolute path, no '..')`);
    return undefined;
  }
  const full = path.join(layerDir, rel);
  let real: string;
  try {
    if (rel === '' || rel.includes('\0') || !statSync(full).isFile()) throw new Error('not a file');
    real = realpathSync(full);
  } catch {
    fi.add(at, `${what} ${quote(rel)} does not exist in the layer folder`);
    return undefined;
  }
  // A symlink may point anywhere; what ends up in an image (and a published package) must come
  // from the layer folder.
  if (!real.startsWith(realpathSync(layerDir) + path.sep)) {
    fi.add(at, `${what} ${quote(rel)} is a link to ${quote(real, '')}, outside the layer folder`);
    return undefined;
  }
  return full;
}

/**
 * What layer checks may use of set.yaml. Each value is there only when set.yaml gives it validly;
 * nothing is filled in for a broken set.yaml.
 */
interface SetFacts {
  family?: DistroFamily;
  codename?: string;
  /** distro is a mapping without a mirror (a mmdebstrap base then has none to install from). */
  mirrorMissing: boolean;
  prefix?: string;
  version?: string;
  /** The valid entries of `flatten`. */
  flatten: string[];
}

function checkSet(name: string, dir: string, p: Parsed, issues: ConfigIssue[]): { facts: SetFacts; set?: SetDef } {
  const before = issues.length;
  const fi = new FileIssues(p, issues);
  if (!validateSetShape(p.data)) issues.push(...shapeIssues(p, validateSetShape.errors ?? []));
  const facts: SetFacts = { mirrorMissing: false, flatten: [] };
  if (!isObj(p.data)) return { facts };
  const raw = p.data;
  const distro = isObj(raw.distro) ? raw.distro : undefined;
  const pkg = isObj(raw.package) ? raw.package : undefined;

  fi.text(['description'], raw.description);
  if (distro) {
    if (distro.family === 'debian' || distro.family === 'el') facts.family = distro.family;
    fi.text(['distro', 'name'], distro.name);
    const version = str(distro.version);
    if (version !== undefined) {
      if (RPM_VERSION.test(version)) facts.version = version;
      else fi.add(['distro', 'version'], `${quote(version)} is not a valid RPM version (letters, digits, . _ + ~ ^; no '-')`);
    }
    const codename = str(distro.codename);
    if (codename !== undefined) {
      if (DEB_SUITE.test(codename)) facts.codename = codename;
      else fi.add(['distro', 'codename'], `${quote(codename)} is not a Debian suite name (lower-case letters, digits, . -)`);
    }
    if (facts.family === 'debian' && distro.codename === undefined) fi.add(['distro'], "missing required key 'codename' (the Debian release suite, e.g. bookworm)");
    const mirror = str(distro.mirror);
    if (mirror !== undefined) fi.url(['distro', 'mirror'], mirror);
    facts.mirrorMissing = distro.mirror === undefined;
  }
  if (pkg) {
    const prefix = str(pkg.prefix);
    if (prefix !== undefined) {
      if (RPM_NAME.test(prefix)) facts.prefix = prefix;
      else fi.add(['package', 'prefix'], `${quote(prefix)} is not a valid RPM package name (letters, digits, . _ + -)`);
    }
    const installDir = str(pkg.install_dir);
    if (installDir !== undefined) {
      const parts = installDir.split('/');
      if (!INSTALL_DIR.test(installDir) || parts.includes('.') || parts.includes('..')) {
        fi.add(['package', 'install_dir'], `${quote(installDir)} must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, quotes, '%', wildcards, '.' or '..')`);
      } else if (parts.some((c) => c.length > NAME_MAX) || installDir.length > PATH_MAX - 1 - NAME_MAX - 1) {
        fi.add(['package', 'install_dir'], `${quote(installDir)} is too long: at most ${NAME_MAX} bytes per folder name and ${PATH_MAX - 1 - NAME_MAX - 1} in all (file names of up to ${NAME_MAX} bytes go in it)`);
      }
    }
    const payload = str(pkg.payload);
    if (payload !== undefined && !PAYLOAD.test(payload)) fi.add(['package', 'payload'], `${quote(payload)} is not an rpm payload setting like w6T0.zstdio, w9T0.xzdio or w.ufdio`);
    fi.text(['package', 'license'], pkg.license);
  }
  // An absent image.size is the documented default, 8G; a size of the wrong type was reported.
  const image = raw.image === undefined ? {} : isObj(raw.image) ? raw.image : undefined;
  const sizeText = image && (image.size === undefined ? '8G' : str(image.size));
  let sizeBytes: number | undefined;
  if (sizeText !== undefined) {
    sizeBytes = parseSize(sizeText);
    if (sizeBytes === undefined || sizeBytes < MIN_IMAGE_BYTES || sizeBytes > MAX_IMAGE_BYTES) {
      fi.add(['image', 'size'], `${quote(sizeText)} must be a size from 1G to 16T, like 8G or 10240M`);
    }
  }
  facts.flatten = strings(raw.flatten).map(([l]) => l);
  const sourceDateText = str(raw.source_date);
  let sourceDate: number | undefined;
  if (sourceDateText !== undefined) {
    sourceDate = parseSourceDate(sourceDateText);
    if (sourceDate === undefined) fi.add(['source_date'], `${quote(sourceDateText)} must be a UTC date from 2020-01-01 to 2099-12-31, like 2026-12-01 or 2026-12-01T06:00:00Z`);
  }
  let sshKey: SetDef['sshKey'];
  if (isObj(raw.ssh_key)) {
    const file = str(raw.ssh_key.file);
    const env = str(raw.ssh_key.env);
    if ((file === undefined) === (env === undefined)) fi.add(['ssh_key'], "give exactly one of 'file' (a key file) and 'env' (a variable holding its path)");
    if (env !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) fi.add(['ssh_key', 'env'], `${quote(env)} is not an environment variable name (letters, digits, _)`);
    if (file !== undefined) {
      if (file === '' || /[\u0000-\u001f\u007f]/.test(file)) fi.add(['ssh_key', 'file'], `${quote(file)} is not a file name`);
      else sshKey = { file: path.resolve(dir, file) };
    }
    if (env !== undefined) sshKey = { env };
  }

  if (issues.length > before) return { facts };
  const r = raw as {
    description?: string;
    distro: { family: DistroFamily; name: string; version: string; codename?: string; mirror?: string; arch?: 'x86_64' };
    package: { prefix: string; default?: boolean; install_dir?: string; payload?: string; license?: string };
  };
  return {
    facts,
    set: {
      name,
      dir,
      file: p.file,
      description: r.description ?? `${r.distro.name} ${r.distro.version} layered images`,
      distro: { ...r.distro, arch: r.distro.arch ?? 'x86_64' },
      image: { sizeBytes: sizeBytes! },
      package: {
        prefix: r.package.prefix,
        default: r.package.default ?? false,
        installDir: r.package.install_dir ?? `/usr/share/${r.package.prefix}`,
        payload: r.package.payload,
        license: r.package.license ?? 'Various',
      },
      flatten: facts.flatten,
      ...(sshKey ? { sshKey } : {}),
      ...(sourceDate !== undefined ? { sourceDate } : {}),
    },
  };
}

interface GraphNode {
  parent?: string;
  file: string;
  parentLine?: number;
}

type BaseKind = 'mmdebstrap' | 'image' | 'kickstart';

/** A download: a URL and either its sha256 or a checksum file (whose digest joins the key). */
function checkSource(d: Obj, at: Seg[], fi: FileIssues): void {
  const url = str(d.url);
  const sha256 = str(d.sha256);
  const checksumUrl = str(d.checksum_url);
  // A folder URL downloads a listing, and the checksum file is searched for the URL's file name
  // (builder/download.ts).
  if (url !== undefined && fi.url([...at, 'url'], url) && new URL(url).pathname.endsWith('/')) fi.add([...at, 'url'], `${quote(url)} names a folder; give the URL of the file`);
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) fi.add([...at, 'sha256'], `${quote(sha256)} is not a sha256 (64 lower-case hex digits)`);
  if (checksumUrl !== undefined) fi.url([...at, 'checksum_url'], checksumUrl);
  if ((d.sha256 === undefined) === (d.checksum_url === undefined)) fi.add(at, "give exactly one of 'sha256' and 'checksum_url', so the download can be checked");
}

function checkLayer(
  name: string,
  dir: string,
  p: Parsed,
  setName: string,
  facts: SetFacts,
  issues: ConfigIssue[],
  graph: Map<string, GraphNode>,
): { layer?: LayerDef; baseKind?: BaseKind } {
  const before = issues.length;
  const fi = new FileIssues(p, issues);
  if (!validateLayerShape(p.data)) issues.push(...shapeIssues(p, validateLayerShape.errors ?? []));
  if (!isObj(p.data)) {
    graph.set(name, { file: p.file });
    return {};
  }
  const raw = p.data;
  // The layer graph is checked for every layer that names a parent, whatever else is wrong with it.
  const parent = str(raw.parent);
  graph.set(name, { parent, file: p.file, parentLine: p.lineOf(['parent']) });
  fi.text(['description'], raw.description);
  if (raw.parent === undefined && raw.base === undefined) {
    fi.add([], "a layer needs either 'parent' (the layer it is built on) or 'base' (how to make a fresh install)");
  }
  if (raw.parent !== undefined && raw.base !== undefined) fi.add(['base'], "a layer has either 'parent' or 'base', not both");

  // Package names: by the set's family; when set.yaml gives none validly, by the rule that holds
  // for both (a name RPM rejects is no Debian name either).
  const rule = facts.family
    ? guestPackageNameRule(facts.family)
    : { re: RPM_NAME, what: 'package name for any family (letters, digits, . _ + -)' };
  const checkPkgs = (list: unknown, at: Seg[]): void => {
    for (const [pkg, i] of strings(list)) if (!rule.re.test(pkg)) fi.add([...at, i], `${quote(pkg)} is not a valid ${rule.what}`);
  };

  let base: BaseDef | undefined;
  let baseKind: BaseKind | undefined;
  const upstream: string[] = [];
  const b = isObj(raw.base) ? raw.base : undefined;
  if (b) {
    const kinds = (['mmdebstrap', 'image', 'kickstart'] as const).filter((k) => b[k] !== undefined);
    if (kinds.length !== 1) fi.add(['base'], `a base has exactly one of: mmdebstrap, image, kickstart${kinds.length ? ` (found ${kinds.join(', ')})` : ''}`);
    else baseKind = kinds[0];
    // The default host name is the set's folder name, which is always known.
    const hostname = b.hostname === undefined ? setName : str(b.hostname);
    if (hostname !== undefined && !HOSTNAME.test(hostname)) {
      fi.add(
        b.hostname === undefined ? ['base'] : ['base', 'hostname'],
        `${b.hostname === undefined ? `the default host name, the set name ${quote(hostname)},` : quote(hostname)} is not a valid host name (lower-case letters, digits and '-', at most 63)${b.hostname === undefined ? "; set 'hostname'" : ''}`,
      );
    }
    const cmdline = strings(b.kernel_cmdline);
    for (const [arg, i] of cmdline) if (!/^[A-Za-z0-9_.,:=/+-]+$/.test(arg)) fi.add(['base', 'kernel_cmdline', i], `${quote(arg)} is not a plain kernel argument`);
    const cmdlineBytes = Buffer.byteLength(cmdline.map(([a]) => a).join(' '));
    if (cmdlineBytes > MAX_KERNEL_CMDLINE_BYTES) fi.add(['base', 'kernel_cmdline'], `the arguments make ${cmdlineBytes} bytes; at most ${MAX_KERNEL_CMDLINE_BYTES} (the kernel cuts its command line at 2047 bytes, GRUB's and the console's included)`);
    const common = { hostname: hostname!, kernelCmdline: cmdline.map(([a]) => a) };

    const m = isObj(b.mmdebstrap) ? b.mmdebstrap : undefined;
    if (m) {
      if (facts.family !== undefined && facts.family !== 'debian') fi.add(['base', 'mmdebstrap'], `mmdebstrap makes Debian bases; this set's family is '${facts.family}'`);
      checkPkgs(m.packages, ['base', 'mmdebstrap', 'packages']);
      // Both reach mmdebstrap's command line: '-' first would make an option of them.
      for (const [s, i] of strings(m.suites)) if (!DEB_SUITE.test(s)) fi.add(['base', 'mmdebstrap', 'suites', i], `${quote(s)} is not a Debian suite name (lower-case letters, digits, . -)`);
      for (const [c, i] of strings(m.components)) if (!DEB_COMPONENT.test(c)) fi.add(['base', 'mmdebstrap', 'components', i], `${quote(c)} is not an archive component name (lower-case letters, digits, . _ - /)`);
      if (baseKind === 'mmdebstrap') {
        const mm = m as { variant?: string; suites?: string[]; components?: string[]; packages?: string[] };
        base = {
          method: 'mmdebstrap',
          variant: mm.variant ?? 'minbase',
          suites: mm.suites ?? (facts.codename ? [facts.codename] : []),
          components: mm.components ?? ['main'],
          packages: mm.packages ?? [],
          ...common,
        };
      }
    }
    const img = isObj(b.image) ? b.image : undefined;
    if (img) {
      checkSource(img, ['base', 'image'], fi);
      if (baseKind === 'image') {
        const i = img as { url: string; sha256?: string; checksum_url?: string; format?: 'qcow2' | 'raw' };
        base = { method: 'image', url: i.url, sha256: i.sha256, checksumUrl: i.checksum_url, format: i.format ?? 'qcow2', ...common };
        if (i.checksum_url !== undefined) upstream.push(i.checksum_url);
      }
    }
    const k = isObj(b.kickstart) ? b.kickstart : undefined;
    if (k) {
      if (facts.family !== undefined && facts.family !== 'el') fi.add(['base', 'kickstart'], `kickstart installs Enterprise Linux (Anaconda); this set's family is '${facts.family}'`);
      const iso = isObj(k.iso) ? k.iso : undefined;
      if (iso) checkSource(iso, ['base', 'kickstart', 'iso'], fi);
      const repos = isObj(k.repos) ? k.repos : {};
      for (const [repo, url] of Object.entries(repos)) {
        const at = ['base', 'kickstart', 'repos', repo];
        if (!/^[A-Za-z0-9_.-]+$/.test(repo)) fi.add(at, `${quote(repo)} is not a valid repository name (letters, digits, _ . -)`);
        // Printed into the kickstart's `repo --baseurl=...` line, which Anaconda splits like a shell.
        if (typeof url === 'string' && fi.url(at, url) && /['#]/.test(url)) fi.add(at, `${quote(url)} holds ' or #, which the kickstart's repo line would cut at`);
      }
      const template = str(k.template);
      const full = template === undefined ? undefined : layerFile(dir, template, ['base', 'kickstart', 'template'], fi, 'kickstart template');
      let templateSha: string | undefined;
      if (full) {
        // The build renders it strictly (an unknown variable is an error): found now, not after
        // a 10 GB download. Rendered once with sample values: variables in a branch the sample
        // does not take are not seen.
        const read = readText(full, MAX_TEMPLATE_BYTES);
        if ('problem' in read) {
          fi.add(['base', 'kickstart', 'template'], `kickstart template ${quote(template!)}${read.line !== undefined ? ` (line ${read.line})` : ''}: ${read.problem}`);
        } else {
          templateSha = digest(full);
          const sampleSet = { name: setName, distro: { version: facts.version ?? '1' }, image: { sizeBytes: MIN_IMAGE_BYTES } } as SetDef;
          const sample = { hostname: 'sample', kernelCmdline: [], repos: { sample: 'https://example.org/repo/' } } as unknown as KickstartBase;
          try {
            renderKickstart(read.text, kickstartVars(sampleSet, sample, 'ssh-ed25519 AAAA sample'));
          } catch (err) {
            fi.add(['base', 'kickstart', 'template'], `kickstart template ${quote(template!)} cannot be rendered: ${templateProblem((err as Error).message)}`);
          }
        }
      }
      if (baseKind === 'kickstart' && full && templateSha && iso) {
        const i = iso as { url: string; sha256?: string; checksum_url?: string };
        base = {
          method: 'kickstart',
          iso: { url: i.url, sha256: i.sha256, checksumUrl: i.checksum_url },
          template: { file: template!, path: full, sha256: templateSha },
          repos: (k.repos as Record<string, string> | undefined) ?? {},
          timeoutSec: (k.timeout as number | undefined) ?? 3600,
          ...common,
        };
        if (i.checksum_url !== undefined) upstream.push(i.checksum_url);
      }
    }
  }

  const steps: Step[] = [];
  (Array.isArray(raw.steps) ? raw.steps : []).forEach((s: unknown, i) => {
    if (!isObj(s)) return;
    const at: Seg[] = ['steps', i];
    // Each action is checked on its own: a step with two of them is the schema's to report.
    if ('install' in s) {
      checkPkgs(s.install, [...at, 'install']);
      steps.push({ kind: 'install', packages: s.install as string[], index: i });
    }
    if ('upgrade' in s) steps.push({ kind: 'upgrade', index: i });
    const run = str(s.run);
    if (run !== undefined) {
      const full = layerFile(dir, run, [...at, 'run'], fi, 'script');
      if (full) steps.push({ kind: 'run', script: run, path: full, sha256: digest(full), index: i });
    }
    const u = isObj(s.upload) ? s.upload : undefined;
    if (u) {
      const from = str(u.from);
      const full = from === undefined ? undefined : layerFile(dir, from, [...at, 'upload', 'from'], fi, 'file');
      const to = str(u.to);
      if (to !== undefined) checkGuestPath(to, [...at, 'upload', 'to'], fi);
      const modeText = u.mode === undefined ? '0644' : str(u.mode);
      if (modeText !== undefined && !/^0?[0-7]{3,4}$/.test(modeText)) fi.add([...at, 'upload', 'mode'], `${quote(modeText)} must be an octal file mode like 0644`);
      if (full && to !== undefined && modeText !== undefined) steps.push({ kind: 'upload', from: from!, path: full, sha256: digest(full), to, mode: parseInt(modeText, 8), index: i });
    }
  });
  for (const [u, i] of strings(raw.upstream)) fi.url(['upstream', i], u);
  const knownDifferences: { path: string; why: string }[] = [];
  (Array.isArray(raw.known_differences) ? raw.known_differences : []).forEach((k: unknown, i: number) => {
    if (!isObj(k)) return;
    const at: Seg[] = ['known_differences', i];
    const kp = str(k.path);
    const why = str(k.why);
    if (kp !== undefined && !KNOWN_DIFFERENCE_PATH.test(kp)) fi.add([...at, 'path'], `${quote(kp)} must be an absolute path in the guest; '*' matches within a name, '**' any number of folders`);
    fi.text([...at, 'why'], k.why);
    if (why !== undefined && why.trim() === '') fi.add([...at, 'why'], 'say why it differs (the layer step that makes it)');
    if (kp !== undefined && why !== undefined) knownDifferences.push({ path: kp, why });
  });

  if (issues.length > before) return { baseKind };
  return {
    baseKind,
    layer: {
      upstream: [...new Set([...strings(raw.upstream).map(([u]) => u), ...upstream])],
      name,
      dir,
      file: p.file,
      description: (raw.description as string | undefined) ?? name,
      parent,
      parentLine: p.lineOf(['parent']),
      base,
      steps,
      knownDifferences,
    },
  };
}

/** Handlebars' error, said in the template's terms. */
function templateProblem(message: string): string {
  const unknown = /^"(.+)" not defined in .* - (\d+):(\d+)/.exec(message);
  if (unknown) {
    return `line ${unknown[2]} uses ${quote(`{{${unknown[1]}}}`)}, which is not a kickstart variable (variables: hostname, rootSshKey, diskSizeMiB, repos (name, url), kernelCmdline, set.name, set.version, doneMarker)`;
  }
  // Handlebars' parse errors: "Parse error on line 3:", the source line, a caret, "Expecting ...".
  const lines = message.split('\n');
  return quote(lines.length > 1 ? `${lines[0]} ${lines.at(-1)}` : lines[0]!, '', 200);
}

/** An upload target: an absolute file path in the guest (the step runs mkdir -p, cp and chmod on it). */
function checkGuestPath(to: string, at: Seg[], fi: FileIssues): void {
  const parts = to.split('/');
  if (!to.startsWith('/') || parts.includes('..')) fi.add(at, `${quote(to)} must be an absolute path in the guest without '..'`);
  else if (to.endsWith('/') || parts.at(-1) === '.') fi.add(at, `${quote(to)} must name a file, not a folder (chmod would change the folder)`);
  else if (/[\u0000-\u001f\u007f]/.test(to)) fi.add(at, `${quote(to)} holds a control character`);
  else if (parts.some((c) => Buffer.byteLength(c) > NAME_MAX) || Buffer.byteLength(to) > PATH_MAX - 1) fi.add(at, `${quote(to)} is too long: at most ${NAME_MAX} bytes per name and ${PATH_MAX - 1} in all`);
}

/** Orders layers parents-first; reports unknown parents and cycles. */
function checkGraph(layers: Map<string, GraphNode>, folders: string[], issues: ConfigIssue[]): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const reportedCycles = new Set<string>();
  const visit = (name: string, trail: string[]): void => {
    const st = state.get(name);
    if (st === 'done') return;
    const layer = layers.get(name)!;
    if (st === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(name)), name];
      const id = [...cycle].sort().join(',');
      if (!reportedCycles.has(id)) {
        reportedCycles.add(id);
        issues.push({ file: layer.file, path: '.parent', line: layer.parentLine, message: `layers form a cycle: ${cycle.join(' -> ')}` });
      }
      return;
    }
    state.set(name, 'visiting');
    if (layer.parent !== undefined) {
      if (!layers.has(layer.parent)) {
        // A parent whose own definition does not read has been reported already.
        if (!folders.includes(layer.parent))
          issues.push({
            file: layer.file,
            path: '.parent',
            line: layer.parentLine,
            message: `unknown parent layer ${quote(layer.parent)} (layers in this set: ${folders.join(', ')})`,
          });
      } else {
        visit(layer.parent, [...trail, name]);
      }
    }
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of [...layers.keys()].sort()) visit(name, []);
  return order;
}

/** Why a name cannot be a set name, or undefined. Pure: nothing is read. */
export function setNameProblem(name: string): string | undefined {
  if (!LAYER_NAME.test(name)) return "a set is a folder directly under the layers directory, named with lower-case letters, digits and . _ + - (starting with a letter or digit)";
  if (Buffer.byteLength(name) > NAME_MAX) return `a folder name has at most ${NAME_MAX} bytes`;
  return undefined;
}

/** Loads and validates layers/<setName>. Throws ConfigError with every issue found. */
export function loadLayerSet(layersDir: string, setName: string): LayerSet {
  // Checked as a name before anything is read: `--set ../x` or `--set /etc` must not read a file.
  const nameProblem = setNameProblem(setName);
  if (nameProblem) throw new UsageError(`invalid set name ${quote(setName)}: ${nameProblem}`);
  const issues: ConfigIssue[] = [];
  const dir = path.join(layersDir, setName);
  const setFile = path.join(dir, SET_FILE);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError([{ file: dir, path: '', message: `no such layer set (sets in ${layersDir}: ${listSets(layersDir).join(', ') || 'none'})` }]);
  }
  const setParsed = parseYamlFile(setFile, issues);
  const { facts, set } = setParsed ? checkSet(setName, dir, setParsed, issues) : { facts: { mirrorMissing: false, flatten: [] } as SetFacts, set: undefined };

  const layers = new Map<string, LayerDef>();
  const graph = new Map<string, GraphNode>();
  const baseKinds = new Map<string, BaseKind>();
  const entries = readdirSync(dir, { withFileTypes: true });
  // A link in place of a layer folder would make its scripts come from elsewhere.
  const linked = entries.filter((e) => e.isSymbolicLink() && statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isDirectory()).map((e) => e.name);
  for (const name of linked) {
    issues.push({ file: path.join(dir, name), path: '', message: `${quote(name)} is a link to a folder; a layer folder must be a real folder in the set's folder` });
  }
  const layerDirs = entries.filter((d) => d.isDirectory()).map((d) => d.name).sort();
  for (const name of layerDirs) {
    const layerDir = path.join(dir, name);
    if (!LAYER_NAME.test(name)) {
      issues.push({ file: layerDir, path: '', message: `layer name ${quote(name)} (the folder name) is not valid: use lower-case letters, digits and . _ + - (RPM would reject it in a package name)` });
    }
    const file = path.join(layerDir, LAYER_FILE);
    if (!existsSync(file)) {
      issues.push({ file: layerDir, path: '', message: `layer folder has no ${LAYER_FILE}` });
      continue;
    }
    const parsed = parseYamlFile(file, issues);
    if (!parsed) continue;
    const r = checkLayer(name, layerDir, parsed, setName, facts, issues, graph);
    if (r.layer) layers.set(name, r.layer);
    if (r.baseKind) baseKinds.set(name, r.baseKind);
  }
  if (layerDirs.length === 0) issues.push({ file: dir, path: '', message: 'the set has no layer folders' });
  // A parent whose folder was reported (a link) is not unknown.
  const order = checkGraph(graph, [...layerDirs, ...linked].sort(), issues);

  const setIssues = setParsed ? new FileIssues(setParsed, issues) : undefined;
  if (setIssues && isObj(setParsed!.data)) {
    strings(setParsed!.data.flatten).forEach(([l, i]) => {
      if (!layerDirs.includes(l)) setIssues.add(['flatten', i], `${quote(l)} is not a layer of this set (layers: ${layerDirs.join(', ')})`);
    });
  }
  // What a build needs from set.yaml, asked for now rather than once the build has started.
  const mmdebstrapBases = [...baseKinds].filter(([, k]) => k === 'mmdebstrap').map(([l]) => l);
  if (setIssues && facts.family === 'debian' && facts.mirrorMissing && mmdebstrapBases.length > 0) {
    setIssues.add(['distro'], `missing key 'mirror' (the Debian mirror mmdebstrap installs from, e.g. http://deb.debian.org/debian), needed by base layer ${quote(mmdebstrapBases[0]!)}`);
  }
  for (const l of facts.flatten) {
    if (layerDirs.includes(l) && layerDirs.includes(`${l}-flat`)) {
      issues.push({
        file: path.join(dir, `${l}-flat`),
        path: '',
        message: `the layer name ${quote(`${l}-flat`)} is taken by the flattened variant of layer ${quote(l)} (set.yaml flattens it): their packages and image files would collide`,
      });
    }
  }
  checkNameLengths(setName, dir, layerDirs.filter((l) => LAYER_NAME.test(l)), facts, baseKinds, setIssues, issues);

  if (issues.length > 0 || !set) throw new ConfigError(byFile(issues), `invalid layer set '${setName}'`);
  return { set, layers, order };
}

/**
 * Every file name each layer becomes must fit (limits.ts). A name too long even with a
 * one-character layer name is the set's doing: reported once, at the longest of the set's parts in
 * it; otherwise at the layer, with the length its name can have.
 */
function checkNameLengths(
  setName: string,
  dir: string,
  layerNames: string[],
  facts: SetFacts,
  baseKinds: Map<string, BaseKind>,
  setIssues: FileIssues | undefined,
  issues: ConfigIssue[],
): void {
  const blamed = new Set<NamePart>();
  for (const layer of layerNames) {
    const parts: NameParts = { set: setName, layer, prefix: facts.prefix, version: facts.version, flattened: facts.flatten.includes(layer), base: baseKinds.get(layer) };
    const long = tooLong(parts);
    if (!long) continue;
    const all = derivedNames(parts);
    const withShortLayer = derivedNames({ ...parts, layer: 'x' })[all.findIndex((d) => d.name === long.name)]!;
    const made = `makes the ${long.what} ${quoteMiddle(long.name)} ${long.bytes} bytes long; at most ${NAME_MAX}`;
    if (withShortLayer.bytes <= NAME_MAX) {
      issues.push({ file: path.join(dir, layer), path: '', message: `the layer name ${quote(layer)} ${made}: in this set a layer name can have at most ${maxLayerNameLength(parts)} characters` });
      continue;
    }
    const values: Record<Exclude<NamePart, 'layer'>, string | undefined> = { set: setName, prefix: facts.prefix, version: facts.version };
    const part = long.parts
      .filter((x): x is Exclude<NamePart, 'layer'> => x !== 'layer')
      .sort((a, b) => (values[b]?.length ?? 0) - (values[a]?.length ?? 0))[0]!;
    if (blamed.has(part)) continue;
    blamed.add(part);
    const v = values[part]!;
    if (part === 'set') issues.push({ file: dir, path: '', message: `the set name ${quote(v)} ${made}` });
    else setIssues?.add(part === 'prefix' ? ['package', 'prefix'] : ['distro', 'version'], `${quote(v)} ${made}`);
  }
}

/** Problems listed per file; a file with more (a binary or a runaway file) gets a count of the rest. */
export const MAX_ISSUES_PER_FILE = 20;

/**
 * Issues grouped by file (in the order files were first named), each file's by line, read top to
 * bottom; at most MAX_ISSUES_PER_FILE per file.
 */
function byFile(issues: ConfigIssue[]): ConfigIssue[] {
  const groups = new Map<string, ConfigIssue[]>();
  for (const i of issues) {
    const g = groups.get(i.file);
    if (g) g.push(i);
    else groups.set(i.file, [i]);
  }
  return [...groups.values()].flatMap((g) => {
    const sorted = [...g].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    if (sorted.length <= MAX_ISSUES_PER_FILE) return sorted;
    const rest = sorted.length - MAX_ISSUES_PER_FILE;
    return [...sorted.slice(0, MAX_ISSUES_PER_FILE), { file: g[0]!.file, path: '', message: `and ${rest} more problem${rest === 1 ? '' : 's'} in this file (the first ${MAX_ISSUES_PER_FILE} are shown)` }];
  });
}

/** Names of the sets in a layers directory: valid set names with a set.yaml. */
export function listSets(layersDir: string): string[] {
  // A file given as --layers-dir (or a name too long) is bad input, not a failure of the listing.
  if (!onUserPath('--layers-dir', layersDir, () => statSync(layersDir, { throwIfNoEntry: false }))) return [];
  return onUserPath('--layers-dir', layersDir, () => readdirSync(layersDir))
    .filter((d) => setNameProblem(d) === undefined && statSync(path.join(layersDir, d, SET_FILE), { throwIfNoEntry: false })?.isFile())
    .sort();
}

export { MAX_FILE_BYTES };
