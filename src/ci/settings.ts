// Site settings of the generated pipelines: which runners, where staging and the production
// repository are, the signing key's name, retention (by count, and optionally by use), the mirrors
// a promotion pushes production to, an upload command, the setup command and (GitHub) the schedule. They come from a small YAML file (ci.yaml at the repository root, or
// --config FILE) and from options, which override the file, and never from editing the generated
// file: a regenerated file would silently drop such an edit.
//
// The environment is deliberately not a source: the generated file is committed and checked for
// drift, so it must be the same whoever regenerates it, whatever their shell exports.
//
// The file is validated as a layer set is, by the same kernel (definitions/kernel.ts): read through
// the bounded YAML reader, checked against its schema (CI_SETTINGS_SCHEMA, which `ost-images schema
// ci` exports; unknown keys are errors) and its rules table, with every problem reported at once
// with file, line, key path and value (exit 2).
import { statSync } from 'node:fs';
import { ConfigError, UsageError, quote, type ConfigIssue } from '../core/errors.js';
import { INSTALL_DIR } from '../definitions/names.js';
import { DRAFT_07 } from '../definitions/schema.js';
import { DAYS, KEEP, describeRule, numberProblem, textNumberProblem, type NumberRule } from '../input/numbers.js';
import { onUserPath } from '../input/paths.js';
import { urlMessage } from '../input/urls.js';
import { checkFile, isObj, type FileKind, type Obj, type Rule } from '../definitions/kernel.js';
import { parseYamlFile } from '../definitions/yaml-file.js';
import { destinationArg, readDestination } from '../tools/rsync.js';

export interface CiSettings {
  /** How a job runs the CLI (OST_IMAGES): a command, word-split by the job's shell. */
  cli: string;
  /** What every job runs first on its runner ('' for nothing: runners are prepared by hand). */
  setup: string;
  /** The staging repository: a directory on a file system every runner shares, and how runners read it. */
  staging: { dir: string; url: string };
  /** The production repository test machines install from. */
  repo: { dir: string; url: string };
  /** The gpg key (name, id or fingerprint) promotion signs with; '' publishes unsigned. */
  signKey: string;
  /** Builds of every top layer kept by retention. */
  keep: number;
  /** Retention also keeps every build downloaded within this many days (absent: by count only). */
  keepUsedWithin?: number;
  /** Where a promotion pushes production afterwards (`promote --mirror`); empty for none. */
  mirrors: string[];
  /** A command that uploads into staging, for sites whose runners do not share its file system; '' for none. */
  upload: string;
  gitlab: { tags: string[] };
  github: { runsOn: string[]; schedule: string };
}

/** What a site may override: every setting, each optional. */
export interface CiOverrides {
  cli?: string;
  setup?: string;
  stagingDir?: string;
  stagingUrl?: string;
  repoDir?: string;
  repoUrl?: string;
  signKey?: string;
  keep?: string;
  keepUsedWithin?: string;
  mirrors?: string[];
  upload?: string;
  /** GitLab tags or GitHub runs-on labels, for the engine being generated. */
  runnerTags?: string[];
  schedule?: string;
}

export const CONFIG_FILE = 'ci.yaml';

const DEFAULT_STAGING_DIR = '/srv/ost-images/staging';
const DEFAULT_REPO_DIR = '/srv/ost-images/repo';

/**
 * The built-in settings. A URL left out is the file:// URL of its directory, so a site that only
 * moves a directory does not keep a URL pointing at the old place.
 */
export const DEFAULT_CI_SETTINGS: Readonly<CiSettings> = Object.freeze({
  cli: './bin/ost-images',
  // Installs the host tools, the npm packages and builds dist/ (bin/ost-images runs dist/).
  setup: 'scripts/install-deps',
  staging: { dir: DEFAULT_STAGING_DIR, url: fileUrl(DEFAULT_STAGING_DIR) },
  repo: { dir: DEFAULT_REPO_DIR, url: fileUrl(DEFAULT_REPO_DIR) },
  signKey: '',
  keep: 3,
  mirrors: [],
  upload: '',
  // No tags: any runner of the project takes the jobs.
  gitlab: { tags: [] },
  // actionlint knows these; a site's own labels are its runners' business.
  github: { runsOn: ['self-hosted', 'linux', 'x64'], schedule: '30 2 * * *' },
});

function fileUrl(dir: string): string {
  // Directories are plain names (dirProblem): nothing in them needs percent-encoding.
  return `file://${dir}`;
}

// --- the file's schema -----------------------------------------------------------------------

/** A JSON Schema of the file (draft-07), exported by `ost-images schema ci` for editors; its values are the defaults. */
export const CI_SETTINGS_SCHEMA = {
  $schema: DRAFT_07,
  $id: 'https://ost-images.invalid/schemas/ci.schema.json',
  title: 'ost-images CI settings (ci.yaml)',
  description:
    'Site settings of the nightly on CI runners: what `ost-images ci gitlab` and `ost-images ci github` put into the generated pipeline besides the jobs, which come from layers/. Every key is optional; an option of the same name wins over the file. Regenerate the pipeline files after a change.',
  type: 'object',
  additionalProperties: false,
  properties: {
    cli: { type: 'string', minLength: 1, default: DEFAULT_CI_SETTINGS.cli, description: "How a job runs the CLI, from the job's checkout (OST_IMAGES)." },
    setup: {
      type: 'string',
      default: DEFAULT_CI_SETTINGS.setup,
      description: "What every job runs first on its runner: the host tools, the npm packages, dist/. '' for nothing (runners prepared by hand).",
    },
    staging: {
      type: 'object',
      description: 'The staging repository: every layer job publishes its layer here and every child job fetches its parent from here; layers never travel as CI artifacts.',
      additionalProperties: false,
      properties: {
        dir: {
          type: 'string',
          pattern: INSTALL_DIR.source,
          default: DEFAULT_STAGING_DIR,
          description: 'A directory on a file system every runner mounts at the same path: an absolute path of plain folder names (OST_IMAGES_STAGING).',
        },
        url: { type: 'string', description: 'Where runners read staging: http(s)://, or file:// for the shared file system itself (default: the file:// URL of dir; OST_IMAGES_STAGING_URL).' },
      },
    },
    repo: {
      type: 'object',
      description: 'The production repository test machines install from; a promotion job publishes into it only the builds of a set whose every build and boot job passed.',
      additionalProperties: false,
      properties: {
        dir: { type: 'string', pattern: INSTALL_DIR.source, default: DEFAULT_REPO_DIR, description: 'Its directory: an absolute path of plain folder names (OST_IMAGES_REPO).' },
        url: {
          type: 'string',
          description: "What its ost-images.repo file names, e.g. https://ci.example.org/ost-images/ (default: the file:// URL of dir; OST_IMAGES_REPO_URL).",
        },
      },
    },
    sign_key: {
      type: 'string',
      description:
        "The NAME of the gpg key promotion signs packages and repomd.xml with (id, fingerprint or e-mail); the secret key comes from the CI's secret store into the runner's GNUPGHOME, never from this file. Default: none, published unsigned (OST_IMAGES_SIGN_KEY).",
    },
    keep: {
      type: 'integer',
      minimum: KEEP.min,
      maximum: KEEP.max,
      default: DEFAULT_CI_SETTINGS.keep,
      description: `Builds of every top layer that retention keeps in production (and every build they require): ${describeRule(KEEP)} (OST_IMAGES_KEEP).`,
    },
    keep_used_within: {
      type: 'number',
      exclusiveMinimum: DAYS.min,
      maximum: DAYS.max,
      description: `Retention by use: production also keeps every build downloaded within this many days, ${describeRule(DAYS)}, from the access logs \`ost-images usage\` reads. Default: unset, retention by count only (OST_IMAGES_KEEP_USED_WITHIN).`,
    },
    mirrors: {
      type: 'array',
      items: { type: 'string' },
      uniqueItems: true,
      description:
        "Mirrors the promotion pushes production to after promoting, in this order: an absolute directory on the promotion's runner, rsync://host[:port]/module/path or [user@]host:path. A mirror that fails fails the job; production stays promoted. Default: none (OST_IMAGES_MIRROR).",
    },
    upload: { type: 'string', description: 'A command that uploads into staging, for sites whose runners do not share its file system. Default: none (OST_IMAGES_UPLOAD).' },
    gitlab: {
      type: 'object',
      description: "GitLab CI. A pipeline's schedule is set in the project (CI/CD > Schedules), not here.",
      additionalProperties: false,
      properties: {
        tags: { type: 'array', items: { type: 'string' }, uniqueItems: true, description: 'The runner tags every job asks for (default: none, any runner of the project).' },
      },
    },
    github: {
      type: 'object',
      description: 'GitHub Actions.',
      additionalProperties: false,
      properties: {
        runs_on: {
          type: 'array',
          items: { type: 'string' },
          minItems: 1,
          uniqueItems: true,
          default: DEFAULT_CI_SETTINGS.github.runsOn,
          description: 'The runs-on labels of every job.',
        },
        schedule: { type: 'string', default: DEFAULT_CI_SETTINGS.github.schedule, description: "When the workflow runs: five-field cron in UTC, like '30 2 * * *'." },
      },
    },
  },
} as const;

// --- value rules, shared by the file and the options ------------------------------------------

/** C0/C1 controls, DEL and the line separators: a setting is one line of text. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function textProblem(v: string): string | undefined {
  if (CONTROL.test(v)) return `${quote(v)} holds a control character (a setting is one line of text)`;
  // GitHub would evaluate it as an expression when the workflow runs, not pass it on.
  if (v.includes('${{')) return `${quote(v)} holds '\${{', which GitHub Actions would read as an expression`;
  return undefined;
}

function commandProblem(v: string, what: string): string | undefined {
  return textProblem(v) ?? (v.trim() === '' ? `must not be empty (${what})` : undefined);
}

/** An absolute directory of plain names: every runner reaches it at the same path, and it is used unquoted. */
function dirProblem(v: string): string | undefined {
  const parts = v.split('/');
  if (!INSTALL_DIR.test(v) || parts.includes('.') || parts.includes('..')) {
    return `${quote(v)} must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, '.' or '..'): every runner reaches it at that same path`;
  }
  return undefined;
}

const urlSettingProblem = (v: string): string | undefined => urlMessage(v);

/** A number given as an option (a string): the same rule as the file's, the same words. */
function optionNumberProblem(v: string, rule: NumberRule): string | undefined {
  return textNumberProblem(v, rule) ? `must be ${describeRule(rule)}, got ${quote(v)}` : undefined;
}

/**
 * A mirror destination as `promote --mirror` takes it, with two more rules: no white space (the
 * mirrors travel in one variable, separated by spaces) and a local one absolute (it is written on
 * whichever runner takes the promotion job, not in its checkout).
 */
function mirrorProblem(v: string): string | undefined {
  const text = textProblem(v);
  if (text) return text;
  if (/\s/.test(v)) return `${quote(v)} holds white space (the mirrors are passed on in one variable, separated by spaces)`;
  const d = readDestination(v);
  if (typeof d === 'string') return `${quote(v)} ${d}`;
  if (d.kind === 'local' && !v.startsWith('/')) return `${quote(v)} is a relative directory: a local mirror must be an absolute path (the promotion job writes it on its runner)`;
  return undefined;
}

/** What makes two mirror settings the same destination (as promote's own check compares them). */
function mirrorKey(v: string): string {
  const d = readDestination(v);
  return typeof d === 'string' ? v : destinationArg(d);
}

function tagProblem(v: string): string | undefined {
  if (v === '') return 'must not be empty';
  if (/\s/.test(v) || CONTROL.test(v)) return `${quote(v)} holds a space or a control character`;
  return textProblem(v);
}

/** Minute, hour, day of month, month, day of week: the five fields GitHub's schedule reads, with their ranges. */
const CRON_FIELDS: [string, number, number][] = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day of month', 1, 31],
  ['month', 1, 12],
  ['day of week', 0, 6],
];

/** Why `v` is not a cron schedule GitHub accepts (numbers, *, ranges, steps and lists only). */
export function cronProblem(v: string): string | undefined {
  const fields = v.trim().split(/\s+/);
  const usage = `${quote(v)} is not a cron schedule of five fields (minute hour day-of-month month day-of-week, in UTC), e.g. '30 2 * * *'`;
  if (CONTROL.test(v) || fields.length !== 5) return usage;
  for (let i = 0; i < 5; i++) {
    const [name, min, max] = CRON_FIELDS[i]!;
    for (const item of fields[i]!.split(',')) {
      const m = /^(\*|([0-9]+)(?:-([0-9]+))?)(?:\/([0-9]+))?$/.exec(item);
      const numbers = m ? [m[2], m[3]].filter((x): x is string => x !== undefined).map(Number) : [];
      if (!m || numbers.some((n) => n < min || n > max) || (m[4] !== undefined && Number(m[4]) < 1)) {
        return `${usage}: ${quote(item)} is not a valid ${name} (${min}-${max}, *, a-b, a,b or a step like */2)`;
      }
    }
  }
  return undefined;
}

// --- the file --------------------------------------------------------------------------------

/** A list of strings each checked on its own, and listed once (by `same`): a problem per item. */
function listProblems(list: unknown[], problem: (v: string) => string | undefined, same: (v: string) => string): (string | undefined)[] {
  const seen = new Map<string, number>();
  return list.map((t, i) => {
    // Not a string: the schema's to report.
    if (typeof t !== 'string') return undefined;
    const p = problem(t);
    if (p) return p;
    const key = same(t);
    if (seen.has(key)) return `lists ${quote(t)} twice (items ${seen.get(key)} and ${i})`;
    seen.set(key, i);
    return undefined;
  });
}

/**
 * The file's rules, key by key (the schema, CI_SETTINGS_SCHEMA, says the structure and types).
 * The settings are the same values as the options: the rules are the options' rules.
 */
const FILE_RULES: Rule<void>[] = [
  { at: '.cli', type: 'string', replaces: ['minLength'], problem: (v) => commandProblem(v, 'how a job runs ost-images') },
  { at: '.setup', type: 'string', problem: textProblem },
  { at: '.staging.dir', type: 'string', replaces: ['pattern'], problem: dirProblem },
  { at: '.staging.url', type: 'string', problem: urlSettingProblem },
  { at: '.repo.dir', type: 'string', replaces: ['pattern'], problem: dirProblem },
  { at: '.repo.url', type: 'string', problem: urlSettingProblem },
  { at: '.sign_key', type: 'string', problem: textProblem },
  // A number in YAML; a quoted one is a string, refused.
  { at: '.keep', type: 'any', replaces: ['type', 'minimum', 'maximum'], problem: (v) => numberProblem(v, KEEP) },
  { at: '.keep_used_within', type: 'any', replaces: ['type', 'exclusiveMinimum', 'maximum'], problem: (v) => numberProblem(v, DAYS) },
  // A mirror by the destination it names: /srv/m and /srv/m/ are one.
  { at: '.mirrors', type: 'list', replaces: ['uniqueItems'], items: (list) => listProblems(list, mirrorProblem, mirrorKey) },
  { at: '.upload', type: 'string', problem: textProblem },
  { at: '.gitlab.tags', type: 'list', replaces: ['uniqueItems'], items: (list) => listProblems(list, tagProblem, (t) => t) },
  {
    at: '.github.runs_on',
    type: 'list',
    replaces: ['minItems'],
    check: (list) => list.length > 0,
    message: () => 'must not be empty (GitHub needs at least one label to pick a runner)',
  },
  { at: '.github.runs_on', type: 'list', replaces: ['uniqueItems'], items: (list) => listProblems(list, tagProblem, (t) => t) },
  { at: '.github.schedule', type: 'string', problem: cronProblem },
];

/**
 * ci.yaml as the validation kernel checks it. Its messages predate the kernel and are kept as they
 * were: no "did you mean" for an unknown key, and problems listed in the order of the keys.
 */
export const CI_KIND: FileKind<void> = { schema: CI_SETTINGS_SCHEMA, rules: FILE_RULES, suggestKeys: false, order: 'keys' };

/** What a checked file sets, in CiOverrides' terms (the file is one more layer of overrides). */
function fromFile(data: Obj, engine: Engine): CiOverrides {
  const sec = (k: string): Obj => (isObj(data[k]) ? data[k] : {});
  const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    cli: s(data.cli),
    setup: s(data.setup),
    stagingDir: s(sec('staging').dir),
    stagingUrl: s(sec('staging').url),
    repoDir: s(sec('repo').dir),
    repoUrl: s(sec('repo').url),
    signKey: s(data.sign_key),
    keep: typeof data.keep === 'number' ? String(data.keep) : undefined,
    keepUsedWithin: typeof data.keep_used_within === 'number' ? String(data.keep_used_within) : undefined,
    mirrors: Array.isArray(data.mirrors) ? (data.mirrors as string[]) : undefined,
    upload: s(data.upload),
    runnerTags: (engine === 'gitlab' ? sec('gitlab').tags : sec('github').runs_on) as string[] | undefined,
    schedule: s(sec('github').schedule),
  };
}

export type Engine = 'gitlab' | 'github';

/**
 * Reads and checks a settings file. Throws ConfigError (exit 2) naming every problem, or
 * UsageError when the file does not exist.
 */
export function readCiConfig(file: string, engine: Engine): CiOverrides {
  // A name too long or a path through a file is the option's problem too, not "no such file".
  if (!onUserPath('--config', file, () => statSync(file, { throwIfNoEntry: false }))) throw new UsageError(`no such CI settings file: ${quote(file)}`);
  const issues: ConfigIssue[] = [];
  const parsed = parseYamlFile(file, issues);
  if (parsed) issues.push(...checkFile(CI_KIND, parsed, undefined).issues);
  if (issues.length > 0 || !parsed) throw new ConfigError(issues, 'invalid CI settings');
  return fromFile(parsed.data as Obj, engine);
}

/** Option names, for messages about values given on the command line. */
const OPTION: Record<keyof CiOverrides, string> = {
  cli: '--cli',
  setup: '--setup',
  stagingDir: '--staging-dir',
  stagingUrl: '--staging-url',
  repoDir: '--repo-dir',
  repoUrl: '--repo-url',
  signKey: '--sign-key',
  keep: '--keep',
  keepUsedWithin: '--keep-used-within',
  mirrors: '--mirror',
  upload: '--upload',
  runnerTags: '--runner-tag',
  schedule: '--schedule',
};

/** Checks option values with the file's rules; every problem at once (UsageError, exit 2). */
function checkOptions(o: CiOverrides): void {
  const problems: string[] = [];
  const check = (k: keyof CiOverrides, problem: string | undefined) => problem && problems.push(`${OPTION[k]}: ${problem}`);
  if (o.cli !== undefined) check('cli', commandProblem(o.cli, 'how a job runs ost-images'));
  for (const k of ['setup', 'signKey', 'upload'] as const) if (o[k] !== undefined) check(k, textProblem(o[k]!));
  for (const k of ['stagingDir', 'repoDir'] as const) if (o[k] !== undefined) check(k, dirProblem(o[k]!));
  for (const k of ['stagingUrl', 'repoUrl'] as const) if (o[k] !== undefined) check(k, urlSettingProblem(o[k]!));
  if (o.keep !== undefined) check('keep', optionNumberProblem(o.keep, KEEP));
  if (o.keepUsedWithin !== undefined) check('keepUsedWithin', optionNumberProblem(o.keepUsedWithin, DAYS));
  if (o.schedule !== undefined) check('schedule', cronProblem(o.schedule));
  for (const t of o.runnerTags ?? []) check('runnerTags', tagProblem(t));
  const seen = new Set<string>();
  for (const m of o.mirrors ?? []) {
    check('mirrors', mirrorProblem(m) ?? (seen.has(mirrorKey(m)) ? `${quote(m)} is given twice` : undefined));
    seen.add(mirrorKey(m));
  }
  if (problems.length > 0) throw new UsageError(`invalid CI settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}

/**
 * The settings in force: the built-in ones, then the file's, then the options'. A URL not given
 * at any level follows its directory.
 */
export function resolveCiSettings(engine: Engine, file: CiOverrides | undefined, options: CiOverrides): CiSettings {
  checkOptions(options);
  const pick = <K extends keyof CiOverrides>(k: K): CiOverrides[K] => options[k] ?? file?.[k];
  const stagingDir = pick('stagingDir') ?? DEFAULT_CI_SETTINGS.staging.dir;
  const repoDir = pick('repoDir') ?? DEFAULT_CI_SETTINGS.repo.dir;
  const tags = pick('runnerTags');
  const keep = pick('keep');
  const keepUsedWithin = pick('keepUsedWithin');
  const d = DEFAULT_CI_SETTINGS;
  return {
    cli: pick('cli') ?? d.cli,
    setup: pick('setup') ?? d.setup,
    staging: { dir: stagingDir, url: pick('stagingUrl') ?? fileUrl(stagingDir) },
    repo: { dir: repoDir, url: pick('repoUrl') ?? fileUrl(repoDir) },
    signKey: pick('signKey') ?? d.signKey,
    keep: keep !== undefined ? Number(keep) : d.keep,
    // Absent unless set: a site that sets neither gets the very file it had before they existed.
    ...(keepUsedWithin !== undefined ? { keepUsedWithin: Number(keepUsedWithin) } : {}),
    mirrors: [...(pick('mirrors') ?? d.mirrors)],
    upload: pick('upload') ?? d.upload,
    gitlab: { tags: engine === 'gitlab' && tags ? [...new Set(tags)] : [...d.gitlab.tags] },
    github: { runsOn: engine === 'github' && tags ? [...new Set(tags)] : [...d.github.runsOn], schedule: pick('schedule') ?? d.github.schedule },
  };
}
