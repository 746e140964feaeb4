// Reads layers/<set>/set.yaml and layers/<set>/<layer>/layer.yaml, validates all of it and returns
// a typed LayerSet. Every problem in every file is collected and reported together (ConfigError,
// exit 2); nothing is written while loading.
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document, type Node } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { layerSchema, setSchema } from './schema.js';
import type { BaseDef, LayerDef, LayerSet, SetDef, Step } from './types.js';
import {
  HOSTNAME,
  LAYER_NAME,
  PAYLOAD,
  RPM_NAME,
  RPM_VERSION,
  guestPackageNameRule,
  parseSize,
} from './names.js';

export const SET_FILE = 'set.yaml';
export const LAYER_FILE = 'layer.yaml';

// verbose: error objects carry their schema, from which 'unknown key' lists the allowed keys.
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
const validateSetShape = ajv.compile(setSchema);
const validateLayerShape = ajv.compile(layerSchema);

type Seg = string | number;

/** `.steps[2].install` — the key path notation used in every message. */
export function formatPath(segs: Seg[]): string {
  return segs.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');
}

interface Parsed {
  file: string;
  data: unknown;
  lineOf(segs: Seg[], key?: boolean): number | undefined;
}

function parseYamlFile(file: string, issues: ConfigIssue[]): Parsed | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    issues.push({ file, path: '', message: `cannot read: ${(err as Error).message}` });
    return undefined;
  }
  const lc = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      issues.push({ file, path: '', line: lc.linePos(e.pos[0]).line, message: `YAML syntax: ${e.message.split('\n')[0]}` });
    }
    return undefined;
  }
  const lineOf = (segs: Seg[], key = false): number | undefined => {
    // For an unknown key, point at the key itself rather than its value.
    let node: unknown = doc.contents;
    for (let i = 0; i < segs.length; i++) {
      if (!node || typeof node !== 'object') return undefined;
      const last = i === segs.length - 1;
      if (isMap(node) && key && last) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === segs[i]);
        node = pair?.key;
      } else {
        node = (node as { get?: (k: Seg, keep: boolean) => unknown }).get?.(segs[i], true);
      }
    }
    const range = (node as Node | undefined)?.range;
    return range ? lc.linePos(range[0]).line : undefined;
  };
  return { file, data: doc.toJS() ?? {}, lineOf };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function segsOf(instancePath: string): Seg[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

function valueAt(data: unknown, segs: Seg[]): unknown {
  let v: unknown = data;
  for (const s of segs) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[s as string] : undefined;
  return v;
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
        message = `unknown key '${extra}' (allowed: ${allowed.join(', ')})`;
        break;
      }
      case 'required':
        message = `missing required key '${(e.params as { missingProperty: string }).missingProperty}'`;
        break;
      case 'type':
        message = `must be ${e.params.type === 'array' ? 'a list' : e.params.type === 'object' ? 'a mapping' : `a ${e.params.type}`}, got ${describe(value)}`;
        break;
      case 'enum':
        message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(value)}`;
        break;
      case 'const':
        message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}, got ${describe(value)}`;
        break;
      case 'minItems':
        message = 'must not be empty';
        break;
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

/** Collects issues for one file; `at` builds a located issue from a key path. */
class FileIssues {
  constructor(
    private readonly p: Parsed,
    private readonly sink: ConfigIssue[],
  ) {}
  add(segs: Seg[], message: string): void {
    this.sink.push({ file: this.p.file, path: formatPath(segs), line: this.p.lineOf(segs), message });
  }
}

/** The bytes of a file a step uses are part of the layer's inputs (its key). */
function digest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** A path inside the layer folder; refuses absolute paths and escapes with '..'. */
function layerFile(layerDir: string, rel: string, at: Seg[], fi: FileIssues, what: string): string | undefined {
  if (path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) {
    fi.add(at, `${what} '${rel}' must be a path inside the layer folder (no absolute path, no '..')`);
    return undefined;
  }
  const full = path.join(layerDir, rel);
  if (!existsSync(full) || !statSync(full).isFile()) {
    fi.add(at, `${what} '${rel}' does not exist in the layer folder`);
    return undefined;
  }
  // A symlink may point anywhere; what ends up in an image (and a published package) must come
  // from the layer folder.
  const real = realpathSync(full);
  if (!real.startsWith(realpathSync(layerDir) + path.sep)) {
    fi.add(at, `${what} '${rel}' is a link to ${real}, outside the layer folder`);
    return undefined;
  }
  return full;
}

interface RawSet {
  description?: string;
  distro: { family: 'debian' | 'el'; name: string; version: string; codename?: string; mirror?: string; arch?: 'x86_64' };
  image?: { size?: string };
  package: { prefix: string; default?: boolean; install_dir?: string; payload?: string; license?: string };
  flatten?: string[];
}

function checkSet(name: string, dir: string, p: Parsed, issues: ConfigIssue[]): SetDef | undefined {
  const before = issues.length;
  if (!validateSetShape(p.data)) {
    issues.push(...shapeIssues(p, validateSetShape.errors ?? []));
    return undefined;
  }
  const raw = p.data as unknown as RawSet;
  const fi = new FileIssues(p, issues);
  if (!LAYER_NAME.test(name)) {
    issues.push({ file: dir, path: '', message: `set name '${name}' (the folder name) is not valid: use lower-case letters, digits and . _ + - (it becomes part of RPM package names)` });
  }
  if (!RPM_VERSION.test(raw.distro.version)) {
    fi.add(['distro', 'version'], `'${raw.distro.version}' is not a valid RPM version (letters, digits, . _ + ~ ^; no '-')`);
  }
  if (raw.distro.family === 'debian' && !raw.distro.codename) {
    fi.add(['distro'], "missing required key 'codename' (the Debian release suite, e.g. bookworm)");
  }
  if (!RPM_NAME.test(raw.package.prefix)) {
    fi.add(['package', 'prefix'], `'${raw.package.prefix}' is not a valid RPM package name (letters, digits, . _ + -)`);
  }
  const installDir = raw.package.install_dir ?? `/usr/share/${raw.package.prefix}`;
  if (raw.package.install_dir !== undefined && (!path.isAbsolute(installDir) || /[\s%"'\\]/.test(installDir) || installDir.split('/').includes('..'))) {
    fi.add(['package', 'install_dir'], `'${installDir}' must be an absolute path without spaces, quotes, '%', '\\' or '..'`);
  }
  if (raw.package.payload !== undefined && !PAYLOAD.test(raw.package.payload)) {
    fi.add(['package', 'payload'], `'${raw.package.payload}' is not an rpm payload setting like w6T0.zstdio, w9T0.xzdio or w.ufdio`);
  }
  const sizeText = raw.image?.size ?? '8G';
  const sizeBytes = parseSize(sizeText);
  if (sizeBytes === undefined || sizeBytes < 1024 ** 3) {
    fi.add(['image', 'size'], `'${sizeText}' must be a size of at least 1G, like 8G or 10240M`);
  }
  if (issues.length > before) return undefined;
  return {
    name,
    dir,
    file: p.file,
    description: raw.description ?? `${raw.distro.name} ${raw.distro.version} layered images`,
    distro: { ...raw.distro, arch: raw.distro.arch ?? 'x86_64' },
    image: { sizeBytes: sizeBytes! },
    package: {
      prefix: raw.package.prefix,
      default: raw.package.default ?? false,
      installDir,
      payload: raw.package.payload,
      license: raw.package.license ?? 'Various',
    },
    flatten: raw.flatten ?? [],
  };
}

interface RawLayer {
  description?: string;
  parent?: string;
  base?: {
    mmdebstrap?: { variant?: string; suites?: string[]; components?: string[]; packages?: string[] };
    image?: { url: string; sha256?: string; checksum_url?: string; format?: 'qcow2' | 'raw' };
    kickstart?: { iso: { url: string; sha256?: string; checksum_url?: string }; template: string; repos?: Record<string, string>; timeout?: number };
    hostname?: string;
    kernel_cmdline?: string[];
  };
  steps?: Record<string, unknown>[];
  upstream?: string[];
}

interface GraphNode {
  parent?: string;
  file: string;
  parentLine?: number;
}

function checkLayer(name: string, dir: string, p: Parsed, set: SetDef | undefined, issues: ConfigIssue[], graph: Map<string, GraphNode>): LayerDef | undefined {
  const before = issues.length;
  if (!validateLayerShape(p.data)) {
    issues.push(...shapeIssues(p, validateLayerShape.errors ?? []));
    return undefined;
  }
  const raw = p.data as unknown as RawLayer;
  // The layer graph is checked for every layer whose shape is right, whatever else is wrong with it.
  graph.set(name, { parent: raw.parent, file: p.file, parentLine: p.lineOf(['parent']) });
  const fi = new FileIssues(p, issues);
  if (!LAYER_NAME.test(name)) {
    issues.push({ file: dir, path: '', message: `layer name '${name}' (the folder name) is not valid: use lower-case letters, digits and . _ + - (RPM would reject it in a package name)` });
  }
  if (raw.parent === undefined && raw.base === undefined) {
    fi.add([], "a layer needs either 'parent' (the layer it is built on) or 'base' (how to make a fresh install)");
  }
  if (raw.parent !== undefined && raw.base !== undefined) {
    fi.add(['base'], "a layer has either 'parent' or 'base', not both");
  }
  const family = set?.distro.family ?? 'debian';
  const rule = guestPackageNameRule(family);
  const checkPkgs = (list: string[] | undefined, at: Seg[]): void => {
    (list ?? []).forEach((pkg, i) => {
      if (!rule.re.test(pkg)) fi.add([...at, i], `'${pkg}' is not a valid ${rule.what}`);
    });
  };

  let base: BaseDef | undefined;
  const upstream = [...(raw.upstream ?? [])];
  if (raw.base) {
    const kinds = (['mmdebstrap', 'image', 'kickstart'] as const).filter((k) => raw.base![k] !== undefined);
    if (kinds.length !== 1) fi.add(['base'], `a base has exactly one of: mmdebstrap, image, kickstart${kinds.length ? ` (found ${kinds.join(', ')})` : ''}`);
    const hostname = raw.base.hostname ?? set?.name ?? name;
    if (!HOSTNAME.test(hostname)) fi.add(['base', 'hostname'], `'${hostname}' is not a valid host name`);
    (raw.base.kernel_cmdline ?? []).forEach((arg, i) => {
      if (!/^[A-Za-z0-9_.,:=/+-]+$/.test(arg)) fi.add(['base', 'kernel_cmdline', i], `'${arg}' is not a plain kernel argument`);
    });
    const common = { hostname, kernelCmdline: raw.base.kernel_cmdline ?? [] };
    /** A download: a URL and either its sha256 or a checksum file (whose digest joins the key). */
    const source = (d: { url: string; sha256?: string; checksum_url?: string }, at: Seg[]) => {
      if (!/^(https?|file):\/\/[^\s]+$/.test(d.url)) fi.add([...at, 'url'], `'${d.url}' is not an http(s):// or file:// URL`);
      if (d.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(d.sha256)) fi.add([...at, 'sha256'], `'${d.sha256}' is not a sha256 (64 lower-case hex digits)`);
      if (d.checksum_url !== undefined && !/^(https?|file):\/\/[^\s]+$/.test(d.checksum_url)) fi.add([...at, 'checksum_url'], `'${d.checksum_url}' is not an http(s):// or file:// URL`);
      if ((d.sha256 === undefined) === (d.checksum_url === undefined)) fi.add(at, "give exactly one of 'sha256' and 'checksum_url', so the download can be checked");
      // With a checksum file, the image changes when that file does: it is an upstream input.
      if (d.checksum_url !== undefined) upstream.push(d.checksum_url);
      return { url: d.url, sha256: d.sha256, checksumUrl: d.checksum_url };
    };
    if (raw.base.mmdebstrap) {
      const m = raw.base.mmdebstrap;
      if (family !== 'debian') fi.add(['base', 'mmdebstrap'], `mmdebstrap makes Debian bases; this set's family is '${family}'`);
      checkPkgs(m.packages, ['base', 'mmdebstrap', 'packages']);
      base = {
        method: 'mmdebstrap',
        variant: m.variant ?? 'minbase',
        suites: m.suites ?? (set?.distro.codename ? [set.distro.codename] : []),
        components: m.components ?? ['main'],
        packages: m.packages ?? [],
        ...common,
      };
    } else if (raw.base.image) {
      base = { method: 'image', ...source(raw.base.image, ['base', 'image']), format: raw.base.image.format ?? 'qcow2', ...common };
    } else if (raw.base.kickstart) {
      const k = raw.base.kickstart;
      if (family !== 'el') fi.add(['base', 'kickstart'], `kickstart installs Enterprise Linux (Anaconda); this set's family is '${family}'`);
      const full = layerFile(dir, k.template, ['base', 'kickstart', 'template'], fi, 'kickstart template');
      Object.entries(k.repos ?? {}).forEach(([repo, url]) => {
        if (!/^[A-Za-z0-9_.-]+$/.test(repo)) fi.add(['base', 'kickstart', 'repos', repo], `'${repo}' is not a valid repository name`);
        if (!/^(https?|file):\/\/[^\s"]+$/.test(url)) fi.add(['base', 'kickstart', 'repos', repo], `'${url}' is not an http(s):// or file:// URL`);
      });
      if (full) {
        base = {
          method: 'kickstart',
          iso: source(k.iso, ['base', 'kickstart', 'iso']),
          template: { file: k.template, path: full, sha256: digest(full) },
          repos: k.repos ?? {},
          timeoutSec: k.timeout ?? 3600,
          ...common,
        };
      }
    }
  }

  const steps: Step[] = [];
  (raw.steps ?? []).forEach((s, i) => {
    const at: Seg[] = ['steps', i];
    if ('install' in s) {
      checkPkgs(s.install as string[], [...at, 'install']);
      steps.push({ kind: 'install', packages: s.install as string[], index: i });
    } else if ('upgrade' in s) {
      steps.push({ kind: 'upgrade', index: i });
    } else if ('run' in s) {
      const script = s.run as string;
      const full = layerFile(dir, script, [...at, 'run'], fi, 'script');
      if (full) steps.push({ kind: 'run', script, path: full, sha256: digest(full), index: i });
    } else if ('upload' in s) {
      const u = s.upload as { from: string; to: string; mode?: string };
      const full = layerFile(dir, u.from, [...at, 'upload', 'from'], fi, 'file');
      if (!u.to.startsWith('/') || u.to.split('/').includes('..')) {
        fi.add([...at, 'upload', 'to'], `'${u.to}' must be an absolute path in the guest without '..'`);
      }
      const modeText = u.mode ?? '0644';
      if (!/^0?[0-7]{3,4}$/.test(modeText)) fi.add([...at, 'upload', 'mode'], `'${modeText}' must be an octal file mode like 0644`);
      if (full) steps.push({ kind: 'upload', from: u.from, path: full, sha256: digest(full), to: u.to, mode: parseInt(modeText, 8), index: i });
    }
  });
  (raw.upstream ?? []).forEach((u, i) => {
    if (!/^(https?|file):\/\/[^\s]+$/.test(u)) fi.add(['upstream', i], `'${u}' is not an http(s):// or file:// URL`);
  });
  if (issues.length > before) return undefined;
  return { upstream: [...new Set(upstream)], name, dir, file: p.file, description: raw.description ?? name, parent: raw.parent, parentLine: p.lineOf(['parent']), base, steps };
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
        // A parent whose own definition is invalid has been reported already.
        if (!folders.includes(layer.parent))
          issues.push({
            file: layer.file,
            path: '.parent',
            line: layer.parentLine,
            message: `unknown parent layer '${layer.parent}' (layers in this set: ${folders.join(', ')})`,
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

/** Loads and validates layers/<setName>. Throws ConfigError with every issue found. */
export function loadLayerSet(layersDir: string, setName: string): LayerSet {
  const issues: ConfigIssue[] = [];
  const dir = path.join(layersDir, setName);
  const setFile = path.join(dir, SET_FILE);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError([{ file: dir, path: '', message: `no such layer set (sets in ${layersDir}: ${listSets(layersDir).join(', ') || 'none'})` }]);
  }
  const setParsed = parseYamlFile(setFile, issues);
  const set = setParsed ? checkSet(setName, dir, setParsed, issues) : undefined;

  const layers = new Map<string, LayerDef>();
  const graph = new Map<string, GraphNode>();
  const layerDirs = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  for (const name of layerDirs) {
    const file = path.join(dir, name, LAYER_FILE);
    if (!existsSync(file)) {
      issues.push({ file: path.join(dir, name), path: '', message: `layer folder has no ${LAYER_FILE}` });
      continue;
    }
    const parsed = parseYamlFile(file, issues);
    const layer = parsed ? checkLayer(name, path.join(dir, name), parsed, set, issues, graph) : undefined;
    if (layer) layers.set(name, layer);
  }
  if (layerDirs.length === 0) issues.push({ file: dir, path: '', message: 'the set has no layer folders' });
  const order = checkGraph(graph, layerDirs, issues);
  if (set && setParsed) {
    set.flatten.forEach((l, i) => {
      if (!layerDirs.includes(l)) new FileIssues(setParsed, issues).add(['flatten', i], `'${l}' is not a layer of this set (layers: ${layerDirs.join(', ')})`);
    });
  }
  if (issues.length > 0 || !set) throw new ConfigError(issues, `invalid layer set '${setName}'`);
  return { set, layers, order };
}

/** Names of the sets in a layers directory. */
export function listSets(layersDir: string): string[] {
  if (!existsSync(layersDir)) return [];
  return readdirSync(layersDir).filter((d) => existsSync(path.join(layersDir, d, SET_FILE))).sort();
}
