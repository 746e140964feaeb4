// `ost-images ci gitlab` / `ci github` as users meet them: --check on the committed files, on a
// stale file (exit 1 and a diff naming the changed lines) and on a missing one (exit 2); --out
// writes atomically; bad settings are exit 2 with every message; the optional settings (mirrors,
// keep_used_within) reach the promotion's variables from the file and from options.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT, cli } from '../helpers/cli.js';
import { VALID_SET, writeLayerSet } from '../helpers/layerset.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('ci-generate');
const GITHUB = '.github/workflows/ost-images-nightly.yml';
afterAll(() => removeTree(tmp));

describe('--check', () => {
  it('passes on the committed .gitlab-ci.yml and GitHub workflow', async () => {
    const gitlab = await cli(['ci', 'gitlab', '--check', path.join(ROOT, '.gitlab-ci.yml')]);
    expect(gitlab.stderr).toContain('.gitlab-ci.yml is current');
    expect(gitlab.code).toBe(0);
    expect(gitlab.stdout).toBe('');
    const github = await cli(['ci', 'github', '--check', path.join(ROOT, '.github/workflows/ost-images-nightly.yml')]);
    expect(github.code).toBe(0);
  });

  it('a stale file: exit 1, a unified diff of the changed lines on stdout, how to regenerate on stderr', async () => {
    const { layersDir } = writeLayerSet({ ...VALID_SET, 'base/layer.yaml': `${VALID_SET['base/layer.yaml']}  hostname: demo\n` });
    const file = path.join(tmp, 'stale.yml');
    const gen = await cli(['ci', 'gitlab', '--layers-dir', layersDir, '--out', file]);
    expect(gen.code).toBe(0);
    // A layer added to the set since the file was generated.
    mkdirSync(path.join(layersDir, 'demo', 'extra'));
    writeFileSync(path.join(layersDir, 'demo', 'extra', 'layer.yaml'), 'parent: app\n');
    const r = await cli(['ci', 'gitlab', '--layers-dir', layersDir, '--check', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^--- ${file}\n\\+\\+\\+ ${file} \\(as generated now\\)\n@@ `));
    const added = r.stdout.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++'));
    expect(added).toContain('+"demo extra":');
    // Generated from another layers directory: the jobs are told to read it.
    expect(added).toContain(`+    - $OST_IMAGES ci layer --set demo --layer extra --layers-dir ${layersDir}`);
    expect(added).toContain('+"demo extra boot":');
    // app is no longer a top layer: its boot job goes.
    expect(r.stdout).toContain('\n-"demo app boot":\n');
    expect(r.stderr).toContain(`error: ${file} is stale: it differs from what layers/ and the site settings generate now (diff above); regenerate it with: ost-images ci gitlab --layers-dir ${layersDir} --out ${file}`);
    // --check never writes.
    expect(readFileSync(file, 'utf8')).not.toContain('demo extra');
  }, 60_000);

  it('a missing file: exit 2', async () => {
    const r = await cli(['ci', 'github', '--check', path.join(tmp, 'nope.yml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: cannot check '${path.join(tmp, 'nope.yml')}': no such file`);
  });
});

it('--out writes the file whole (through a temporary file), creating its folder; stdout without it', async () => {
  const out = path.join(tmp, 'out', '.github', 'workflows', 'w.yml');
  const r = await cli(['ci', 'github', '--set', 'debian12', '--out', out]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe('');
  expect(readdirSync(path.dirname(out))).toEqual(['w.yml']);
  const text = readFileSync(out, 'utf8');
  expect(parse(text).jobs['promote__debian12'].name).toBe('debian12 promote');
  const stdout = await cli(['ci', 'github', '--set', 'debian12']);
  expect(stdout.stdout).toBe(text);
});

describe('mirrors and retention by use', () => {
  it('from the settings file, or options over it, into the variables the promotion reads; the header names the options', async () => {
    const config = path.join(tmp, 'mirrors-ci.yaml');
    writeFileSync(config, 'keep_used_within: 7\nmirrors:\n  - /srv/www/ost-images\n  - rsync://mirror2.example.org/ost-images/\n');
    const r = await cli(['ci', 'gitlab', '--set', 'debian12', '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    const doc = parse(r.stdout);
    expect(doc.variables.OST_IMAGES_KEEP_USED_WITHIN).toBe('7');
    expect(doc.variables.OST_IMAGES_MIRROR).toBe('/srv/www/ost-images rsync://mirror2.example.org/ost-images/');
    const o = await cli(['ci', 'github', '--set', 'debian12', '--config', config, '--mirror', '/srv/a', 'deploy@web1:/srv/ost', '--keep-used-within', '0.5']);
    expect(o.code, o.stderr).toBe(0);
    expect(parse(o.stdout).env).toMatchObject({ OST_IMAGES_KEEP_USED_WITHIN: '0.5', OST_IMAGES_MIRROR: '/srv/a deploy@web1:/srv/ost' });
    expect(o.stdout).toContain(`#   ost-images ci github --set debian12 --config ${config} --keep-used-within 0.5 --mirror /srv/a --mirror deploy@web1:/srv/ost --check ${GITHUB}\n`);
    // The same inputs, the same bytes.
    expect((await cli(['ci', 'github', '--set', 'debian12', '--config', config, '--mirror', '/srv/a', 'deploy@web1:/srv/ost', '--keep-used-within', '0.5'])).stdout).toBe(o.stdout);
  });

  it('bad ones: exit 2 naming the key or option and the value', async () => {
    const config = path.join(tmp, 'bad-mirrors-ci.yaml');
    writeFileSync(config, 'mirrors: [relative/dir]\nkeep_used_within: soon\n');
    const r = await cli(['ci', 'gitlab', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`  ${config}:1: .mirrors[0]: 'relative/dir' is a relative directory`);
    expect(r.stderr).toContain(`  ${config}:2: .keep_used_within: must be a positive number of days (more than 0, at most 3650), got string "soon"`);
    const o = await cli(['ci', 'gitlab', '--mirror', 'rsync://host']);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain("--mirror: 'rsync://host' is not rsync://host[:port]/module[/path]");
  });
});

describe('bad input: exit 2, nothing written', () => {
  it('invalid settings, from the file and from options', async () => {
    const config = path.join(tmp, 'bad-ci.yaml');
    writeFileSync(config, 'staging:\n  url: ftp://x/\nkeep: 0\n');
    const out = path.join(tmp, 'never.yml');
    const r = await cli(['ci', 'gitlab', '--config', config, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: invalid CI settings:\n  ${config}:2: .staging.url: 'ftp://x/' is not a usable URL: only http://, https:// and file:// URLs are supported\n  ${config}:3: .keep: must be a positive whole number (1 to 1000), got number 0`);
    expect(existsSync(out)).toBe(false);
    const o = await cli(['ci', 'github', '--repo-url', 'gopher://x', '--out', out]);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain("--repo-url: 'gopher://x' is not a usable URL");
    expect(existsSync(out)).toBe(false);
  });

  it('an unknown set, and --check with --out', async () => {
    const r = await cli(['ci', 'gitlab', '--set', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such layer set');
    const both = await cli(['ci', 'gitlab', '--check', 'a', '--out', 'b']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--check compares a file, --out writes one: give one of them');
  });
});
