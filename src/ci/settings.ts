// Site settings of the generated pipelines: which runners, where staging and the production
// repository are, the signing key's name, retention (by count, and optionally by use), the mirrors
// a promotion pushes production to, an upload command, the setup command and (GitHub) the schedule. They come from a small YAML file (ci.yaml at the repository root, or
// --config FILE) and from options, which override the file, and never from editing the generated
// file: a regenerated file would silently drop such an edit.
//
// The environment is deliberately not a source: the generated file is committed and checked for
// drift, so it must be the same whoever regenerates it, whatever their shell exports.
//
// The file is validated like a layer set: read through the bounded YAML reader, unknown keys are
// errors, and every problem is reported at once with file, line, key path and value (exit 2).
import { statSync } from 'node:fs';
import { ConfigError, UsageError, describeValue, quote, type ConfigIssue } from '../core/errors.js';
import { INSTALL_DIR } from '../definitions/names.js';
import { DAYS, KEEP, describeRule, numberProblem, textNumberProblem, type NumberRule } from '../input/numbers.js';
import { onUserPath } from '../input/paths.js';
import { urlMessage } from '../input/urls.js';
import { formatPath, parseYamlFile, type Parsed, type Seg } from '../definitions/yaml-file.js';
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

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);


/** The file's keys and how each is checked; a nested object is a section. */
type Rule = 'text' | 'command' | 'dir' | 'url' | 'keep' | 'days' | 'tags' | 'mirrors' | 'cron' | { [key: string]: Rule };
const FILE_RULES: { [key: string]: Rule } = {
  cli: 'command',
  setup: 'text',
  staging: { dir: 'dir', url: 'url' },
  repo: { dir: 'dir', url: 'url' },
  sign_key: 'text',
  keep: 'keep',
  keep_used_within: 'days',
  mirrors: 'mirrors',
  upload: 'text',
  gitlab: { tags: 'tags' },
  github: { runs_on: 'tags', schedule: 'cron' },
};

/** The settings a file gives, as written (snake_case keys), checked; every problem goes to `issues`. */
function checkFile(p: Parsed, issues: ConfigIssue[]): void {
  const add = (segs: Seg[], message: string, key = false) => issues.push({ file: p.file, path: formatPath(segs), line: p.lineOf(segs, key), message });
  const walk = (value: unknown, rules: { [key: string]: Rule }, segs: Seg[]): void => {
    if (!isObj(value)) {
      add(segs, `must be a mapping, got ${describeValue(value)}`);
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      const rule = rules[k];
      const at = [...segs, k];
      if (rule === undefined) {
        add(at, `unknown key ${quote(k)} (allowed: ${Object.keys(rules).join(', ')})`, true);
      } else if (typeof rule === 'object') {
        walk(v, rule, at);
      } else if (rule === 'keep' || rule === 'days') {
        // A number in YAML; a quoted one is a string, refused.
        const problem = numberProblem(v, rule === 'keep' ? KEEP : DAYS);
        if (problem) add(at, problem);
      } else if (rule === 'tags' || rule === 'mirrors') {
        if (!Array.isArray(v)) {
          add(at, `must be a list, got ${describeValue(v)}`);
          continue;
        }
        if (k === 'runs_on' && v.length === 0) add(at, 'must not be empty (GitHub needs at least one label to pick a runner)');
        const seen = new Map<string, number>();
        v.forEach((t, i) => {
          if (typeof t !== 'string') return add([...at, i], `must be a string, got ${describeValue(t)}`);
          const problem = rule === 'mirrors' ? mirrorProblem(t) : tagProblem(t);
          if (problem) return add([...at, i], problem);
          // A mirror by the destination it names: /srv/m and /srv/m/ are one.
          const same = rule === 'mirrors' ? mirrorKey(t) : t;
          if (seen.has(same)) return add([...at, i], `lists ${quote(t)} twice (items ${seen.get(same)} and ${i})`);
          seen.set(same, i);
        });
      } else if (typeof v !== 'string') {
        add(at, `must be a string, got ${describeValue(v)}`);
      } else {
        const problem = valueProblem(rule, v, k);
        if (problem) add(at, problem);
      }
    }
  };
  walk(p.data, FILE_RULES, []);
}

function valueProblem(rule: 'text' | 'command' | 'dir' | 'url' | 'cron', v: string, what: string): string | undefined {
  switch (rule) {
    case 'text':
      return textProblem(v);
    case 'command':
      return commandProblem(v, what === 'cli' ? 'how a job runs ost-images' : what);
    case 'dir':
      return dirProblem(v);
    case 'url':
      return urlSettingProblem(v);
    case 'cron':
      return cronProblem(v);
  }
}

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
  if (parsed) checkFile(parsed, issues);
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
