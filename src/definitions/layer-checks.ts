// layer.yaml: its rules (what the schema in schema.ts cannot say: package names by the set's family,
// files in the layer folder, URLs, a kickstart template that renders, guest paths), and the typed
// LayerDef, made only from a layer.yaml with no problem at all. What a layer check needs of set.yaml
// comes as SetFacts: a check that needs a value set.yaml does not validly give is skipped, or made
// with a rule that holds for every possible value.
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { type ConfigIssue, quote } from '../core/errors.js';
import { urlMessage } from '../input/urls.js';
import { debSuiteRule, textRule, urlRule } from './common-rules.js';
import { checkFile, isObj, type FileKind, type Obj, type Rule } from './kernel.js';
import { kickstartVars, renderKickstart } from './kickstart-template.js';
import { NAME_MAX } from './limits.js';
import { DEB_COMPONENT, HOSTNAME, KNOWN_DIFFERENCE_PATH, RPM_NAME, guestPackageNameRule } from './names.js';
import { FILE_MODE, KERNEL_ARG, SHA256, layerSchema } from './schema.js';
import { MIN_IMAGE_BYTES, PATH_MAX, type SetFacts } from './set-checks.js';
import type { BaseDef, KickstartBase, LayerDef, SetDef, Step } from './types.js';
import { readText, type Parsed } from './yaml-file.js';

export const LAYER_FILE = 'layer.yaml';

/** Kernel arguments a layer adds, joined: well inside x86's 2048-byte command line with GRUB's own. */
export const MAX_KERNEL_CMDLINE_BYTES = 1024;
/** A kickstart template is read whole and rendered at build time. */
export const MAX_TEMPLATE_BYTES = 256 * 1024;

export type BaseKind = 'mmdebstrap' | 'image' | 'kickstart';

/** What the rules of one layer.yaml read besides the file. */
interface LayerCx {
  setName: string;
  /** The layer folder. */
  dir: string;
  facts: SetFacts;
}

/** The string items of a list (the others are the schema's to report). */
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Which base a `base` mapping names, when it names exactly one. */
export function baseKindOf(raw: unknown): BaseKind | undefined {
  const b = isObj(raw) && isObj(raw.base) ? raw.base : undefined;
  const kinds = b ? (['mmdebstrap', 'image', 'kickstart'] as const).filter((k) => b[k] !== undefined) : [];
  return kinds.length === 1 ? kinds[0] : undefined;
}

/** Package names: by the set's family; when set.yaml gives none validly, by the rule that holds for both (a name RPM rejects is no Debian name either). */
const packageRule = (at: string): Rule<LayerCx> => ({
  at,
  type: 'string',
  replaces: ['pattern'],
  problem: (v, cx) => {
    const rule = cx.facts.family ? guestPackageNameRule(cx.facts.family) : { re: RPM_NAME, what: 'package name for any family (letters, digits, . _ + -)' };
    return rule.re.test(v) ? undefined : `${quote(v)} is not a valid ${rule.what}`;
  },
});

/** A download: a URL and either its sha256 or a checksum file (whose digest joins the key). */
const sourceRules = (at: string): Rule<LayerCx>[] => [
  {
    at: `${at}.url`,
    type: 'string',
    // A folder URL downloads a listing, and the checksum file is searched for the URL's file name
    // (builder/download.ts).
    problem: (v) => urlMessage(v) ?? (new URL(v).pathname.endsWith('/') ? `${quote(v)} names a folder; give the URL of the file` : undefined),
  },
  { at: `${at}.sha256`, type: 'string', replaces: ['pattern'], check: (v) => SHA256.test(v), message: (v) => `${quote(v)} is not a sha256 (64 lower-case hex digits)` },
  urlRule(`${at}.checksum_url`),
  {
    at,
    type: 'mapping',
    check: (d) => (d.sha256 === undefined) !== (d.checksum_url === undefined),
    message: () => "give exactly one of 'sha256' and 'checksum_url', so the download can be checked",
  },
];

/** A file inside the layer folder: why not (an absolute path, an escape with '..', a link out of it), or undefined. */
function layerFileProblem(layerDir: string, rel: string, what: string): string | undefined {
  if (path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) return `${what} ${quote(rel)} must be a path inside the layer folder (no absolute path, no '..')`;
  const full = path.join(layerDir, rel);
  let real: string;
  try {
    if (rel === '' || rel.includes('\0') || !statSync(full).isFile()) throw new Error('not a file');
    real = realpathSync(full);
  } catch {
    return `${what} ${quote(rel)} does not exist in the layer folder`;
  }
  // A symlink may point anywhere; what ends up in an image (and a published package) must come
  // from the layer folder.
  if (!real.startsWith(realpathSync(layerDir) + path.sep)) return `${what} ${quote(rel)} is a link to ${quote(real, '')}, outside the layer folder`;
  return undefined;
}

const layerFileRule = (at: string, what: string): Rule<LayerCx> => ({ at, type: 'string', problem: (v, cx) => layerFileProblem(cx.dir, v, what) });

/**
 * The kickstart template: a file of the layer folder that the build can render. It renders strictly
 * (an unknown variable is an error): found now, not after a 10 GB download. Rendered once with
 * sample values: variables in a branch the sample does not take are not seen.
 */
function templateProblem(template: string, cx: LayerCx): string | undefined {
  const inFolder = layerFileProblem(cx.dir, template, 'kickstart template');
  if (inFolder) return inFolder;
  const read = readText(path.join(cx.dir, template), MAX_TEMPLATE_BYTES);
  if ('problem' in read) return `kickstart template ${quote(template)}${read.line !== undefined ? ` (line ${read.line})` : ''}: ${read.problem}`;
  const sampleSet = { name: cx.setName, distro: { version: cx.facts.version ?? '1' }, image: { sizeBytes: MIN_IMAGE_BYTES } } as SetDef;
  const sample = { hostname: 'sample', kernelCmdline: [], repos: { sample: 'https://example.org/repo/' } } as unknown as KickstartBase;
  try {
    renderKickstart(read.text, kickstartVars(sampleSet, sample, 'ssh-ed25519 AAAA sample'));
  } catch (err) {
    return `kickstart template ${quote(template)} cannot be rendered: ${handlebarsProblem((err as Error).message)}`;
  }
  return undefined;
}

/** Handlebars' error, said in the template's terms. */
function handlebarsProblem(message: string): string {
  const unknown = /^"(.+)" not defined in .* - (\d+):(\d+)/.exec(message);
  if (unknown) {
    return `line ${unknown[2]} uses ${quote(`{{${unknown[1]}}}`)}, which is not a kickstart variable (variables: hostname, rootSshKey, diskSizeMiB, repos (name, url), kernelCmdline, set.name, set.version, doneMarker)`;
  }
  // Handlebars' parse errors: "Parse error on line 3:", the source line, a caret, "Expecting ...".
  const lines = message.split('\n');
  return quote(lines.length > 1 ? `${lines[0]} ${lines.at(-1)}` : lines[0]!, '', 200);
}

/** An upload target: an absolute file path in the guest (the step runs mkdir -p, cp and chmod on it). */
function guestPathProblem(to: string): string | undefined {
  const parts = to.split('/');
  if (!to.startsWith('/') || parts.includes('..')) return `${quote(to)} must be an absolute path in the guest without '..'`;
  if (to.endsWith('/') || parts.at(-1) === '.') return `${quote(to)} must name a file, not a folder (chmod would change the folder)`;
  if (/[\u0000-\u001f\u007f]/.test(to)) return `${quote(to)} holds a control character`;
  if (parts.some((c) => Buffer.byteLength(c) > NAME_MAX) || Buffer.byteLength(to) > PATH_MAX - 1) return `${quote(to)} is too long: at most ${NAME_MAX} bytes per name and ${PATH_MAX - 1} in all`;
  return undefined;
}

/** layer.yaml's rules, key by key, in the order its problems on one line are listed. */
const LAYER_RULES: Rule<LayerCx>[] = [
  textRule('.description'),
  {
    at: '',
    type: 'mapping',
    check: (l) => l.parent !== undefined || l.base !== undefined,
    message: () => "a layer needs either 'parent' (the layer it is built on) or 'base' (how to make a fresh install)",
  },
  { at: '', reportAt: '.base', type: 'mapping', check: (l) => l.parent === undefined || l.base === undefined, message: () => "a layer has either 'parent' or 'base', not both" },
  {
    at: '.base',
    type: 'mapping',
    problem: (b) => {
      const kinds = (['mmdebstrap', 'image', 'kickstart'] as const).filter((k) => b[k] !== undefined);
      return kinds.length === 1 ? undefined : `a base has exactly one of: mmdebstrap, image, kickstart${kinds.length ? ` (found ${kinds.join(', ')})` : ''}`;
    },
  },
  // The default host name is the set's folder name, which is always known.
  {
    at: '.base',
    type: 'mapping',
    check: (b, cx) => b.hostname !== undefined || HOSTNAME.test(cx.setName),
    message: (_b, cx) => `the default host name, the set name ${quote(cx.setName)}, is not a valid host name (lower-case letters, digits and '-', at most 63); set 'hostname'`,
  },
  {
    at: '.base.hostname',
    type: 'string',
    replaces: ['pattern'],
    check: (v) => HOSTNAME.test(v),
    message: (v) => `${quote(v)} is not a valid host name (lower-case letters, digits and '-', at most 63)`,
  },
  { at: '.base.kernel_cmdline[]', type: 'string', replaces: ['pattern'], check: (v) => KERNEL_ARG.test(v), message: (v) => `${quote(v)} is not a plain kernel argument` },
  {
    at: '.base.kernel_cmdline',
    type: 'list',
    problem: (list) => {
      const bytes = Buffer.byteLength(strings(list).join(' '));
      return bytes > MAX_KERNEL_CMDLINE_BYTES
        ? `the arguments make ${bytes} bytes; at most ${MAX_KERNEL_CMDLINE_BYTES} (the kernel cuts its command line at 2047 bytes, GRUB's and the console's included)`
        : undefined;
    },
  },
  {
    at: '.base.mmdebstrap',
    type: 'mapping',
    check: (_m, cx) => cx.facts.family === undefined || cx.facts.family === 'debian',
    message: (_m, cx) => `mmdebstrap makes Debian bases; this set's family is '${cx.facts.family}'`,
  },
  packageRule('.base.mmdebstrap.packages[]'),
  // Both reach mmdebstrap's command line: '-' first would make an option of them.
  debSuiteRule('.base.mmdebstrap.suites[]'),
  {
    at: '.base.mmdebstrap.components[]',
    type: 'string',
    replaces: ['pattern'],
    check: (v) => DEB_COMPONENT.test(v),
    message: (v) => `${quote(v)} is not an archive component name (lower-case letters, digits, . _ - /)`,
  },
  ...sourceRules('.base.image'),
  {
    at: '.base.kickstart',
    type: 'mapping',
    check: (_k, cx) => cx.facts.family === undefined || cx.facts.family === 'el',
    message: (_k, cx) => `kickstart installs Enterprise Linux (Anaconda); this set's family is '${cx.facts.family}'`,
  },
  ...sourceRules('.base.kickstart.iso'),
  {
    at: '.base.kickstart.repos{}',
    each: [
      {
        at: '',
        type: 'any',
        check: (_url, _cx, at) => /^[A-Za-z0-9_.-]+$/.test(String(at.at(-1))),
        message: (_url, _cx, at) => `${quote(String(at.at(-1)))} is not a valid repository name (letters, digits, _ . -)`,
      },
      urlRule(''),
      // Printed into the kickstart's `repo --baseurl=...` line, which Anaconda splits like a shell.
      // (A URL that is not one has had its message.)
      { at: '', type: 'string', check: (v) => urlMessage(v) !== undefined || !/['#]/.test(v), message: (v) => `${quote(v)} holds ' or #, which the kickstart's repo line would cut at` },
    ],
  },
  { at: '.base.kickstart.template', type: 'string', problem: templateProblem },
  {
    at: '.steps[]',
    each: [
      packageRule('.install[]'),
      layerFileRule('.run', 'script'),
      layerFileRule('.upload.from', 'file'),
      { at: '.upload.to', type: 'string', problem: guestPathProblem },
      // Absent, it is the default, 0644.
      { at: '.upload.mode', type: 'string', replaces: ['pattern'], check: (v) => FILE_MODE.test(v), message: (v) => `${quote(v)} must be an octal file mode like 0644` },
    ],
  },
  urlRule('.upstream[]'),
  {
    at: '.known_differences[]',
    each: [
      {
        at: '.path',
        type: 'string',
        replaces: ['pattern'],
        check: (v) => KNOWN_DIFFERENCE_PATH.test(v),
        message: (v) => `${quote(v)} must be an absolute path in the guest; '*' matches within a name, '**' any number of folders`,
      },
      textRule('.why'),
      { at: '.why', type: 'string', check: (v) => v.trim() !== '', message: () => 'say why it differs (the layer step that makes it)' },
    ],
  },
];

export const LAYER_KIND: FileKind<LayerCx> = { schema: layerSchema, rules: LAYER_RULES };

/** Where a layer stands in the layer graph, for every layer whose file reads (whatever else is wrong with it). */
export interface GraphNode {
  parent?: string;
  file: string;
  parentLine?: number;
}

/**
 * Checks a layer.yaml that reads; its problems go to `issues`. Returns its place in the layer
 * graph, its base kind (when it names exactly one), and the LayerDef when it has no problem.
 */
export function checkLayer(name: string, dir: string, p: Parsed, setName: string, facts: SetFacts, issues: ConfigIssue[]): { node: GraphNode; baseKind?: BaseKind; layer?: LayerDef } {
  const checked = checkFile(LAYER_KIND, p, { setName, dir, facts });
  issues.push(...checked.issues);
  if (!isObj(p.data)) return { node: { file: p.file } };
  const parent = typeof p.data.parent === 'string' ? p.data.parent : undefined;
  const node = { parent, file: p.file, parentLine: p.lineOf(['parent']) };
  const baseKind = baseKindOf(p.data);
  if (checked.issues.length > 0) return { node, baseKind };
  return { node, baseKind, layer: layerDef(name, dir, p, setName, facts) };
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

/** The typed layer of a layer.yaml without problems, defaults filled in and the files it uses digested. */
function layerDef(name: string, dir: string, p: Parsed, setName: string, facts: SetFacts): LayerDef {
  const raw = p.data as Obj;
  const upstream: string[] = [];
  let base: BaseDef | undefined;
  if (isObj(raw.base)) {
    const b = raw.base;
    const common = { hostname: (b.hostname as string | undefined) ?? setName, kernelCmdline: strings(b.kernel_cmdline) };
    if (isObj(b.mmdebstrap)) {
      const mm = b.mmdebstrap as { variant?: string; suites?: string[]; components?: string[]; packages?: string[] };
      base = {
        method: 'mmdebstrap',
        variant: mm.variant ?? 'minbase',
        suites: mm.suites ?? (facts.codename ? [facts.codename] : []),
        components: mm.components ?? ['main'],
        packages: mm.packages ?? [],
        ...common,
      };
    } else if (isObj(b.image)) {
      const i = b.image as { url: string; sha256?: string; checksum_url?: string; format?: 'qcow2' | 'raw' };
      base = { method: 'image', url: i.url, sha256: i.sha256, checksumUrl: i.checksum_url, format: i.format ?? 'qcow2', ...common };
      if (i.checksum_url !== undefined) upstream.push(i.checksum_url);
    } else if (isObj(b.kickstart)) {
      const k = b.kickstart as { iso: { url: string; sha256?: string; checksum_url?: string }; template: string; repos?: Record<string, string>; timeout?: number };
      const full = path.join(dir, k.template);
      base = {
        method: 'kickstart',
        iso: { url: k.iso.url, sha256: k.iso.sha256, checksumUrl: k.iso.checksum_url },
        template: { file: k.template, path: full, sha256: digest(full) },
        repos: k.repos ?? {},
        timeoutSec: k.timeout ?? 3600,
        ...common,
      };
      if (k.iso.checksum_url !== undefined) upstream.push(k.iso.checksum_url);
    }
  }
  const steps: Step[] = (Array.isArray(raw.steps) ? (raw.steps as Obj[]) : []).map((s, index): Step => {
    if (s.install !== undefined) return { kind: 'install', packages: s.install as string[], index };
    if (s.run !== undefined) {
      const full = path.join(dir, s.run as string);
      return { kind: 'run', script: s.run as string, path: full, sha256: digest(full), index };
    }
    if (s.upload !== undefined) {
      const u = s.upload as { from: string; to: string; mode?: string };
      const full = path.join(dir, u.from);
      return { kind: 'upload', from: u.from, path: full, sha256: digest(full), to: u.to, mode: parseInt(u.mode ?? '0644', 8), index };
    }
    return { kind: 'upgrade', index };
  });
  const knownDifferences = (Array.isArray(raw.known_differences) ? (raw.known_differences as { path: string; why: string }[]) : []).map((k) => ({ path: k.path, why: k.why }));
  return {
    upstream: [...new Set([...strings(raw.upstream), ...upstream])],
    name,
    dir,
    file: p.file,
    description: (raw.description as string | undefined) ?? name,
    parent: raw.parent as string | undefined,
    parentLine: p.lineOf(['parent']),
    base,
    steps,
    knownDifferences,
  };
}
