// The operations commands against hostile and mistaken input (issue 18), through the real CLI on a
// published tiny repository: each numbered case of the issue as a test, and one table running
// every command that takes a path with a too-long name, a file where a folder is expected and a
// folder where a file is expected. Every refusal is exit 2 naming the option and the value, with
// no stack trace, and writes nothing.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import { MIRROR_MARKER } from '../../src/mirror/mirror.js';
import { Store } from '../../src/store/store.js';
import { ROOT, cli, type CliResult } from '../helpers/cli.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';
import { publishedDemoChain } from '../helpers/tiny.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('hostile-ops');
const storeDir = path.join(tmp, 'store');
const repo = path.join(tmp, 'repo');
/** 400 digits: Infinity to JavaScript's Number(). */
const HUGE = '9'.repeat(400);
const HUGE_QUOTED = `'${'9'.repeat(60)}…' (400 characters)`;
/** A name of 300 characters: ENAMETOOLONG for any path holding it. */
const LONG = 'n'.repeat(300);
let layersDir: string;

/** Every file and directory under `dir`, relative, sorted: what "nothing written" compares. */
function tree(dir: string, rel = ''): string[] {
  if (!existsSync(path.join(dir, rel))) return [];
  const out: string[] = [];
  for (const name of readdirSync(path.join(dir, rel)).sort()) {
    const p = path.join(rel, name);
    out.push(p);
    if (lstatSync(path.join(dir, p)).isDirectory()) out.push(...tree(dir, p));
  }
  return out;
}

/** Exit 2, one clear error naming `message`, no stack trace. */
function refused(r: CliResult, message: RegExp | string, what: string): void {
  expect(r.code, `${what}\n${r.stderr}`).toBe(2);
  if (typeof message === 'string') expect(r.stderr, what).toContain(message);
  else expect(r.stderr, what).toMatch(message);
  expect(r.stderr, what).not.toMatch(/^ +at |unexpected failure/m);
}

beforeAll(async () => {
  layersDir = writeLayerSet(demoSet({ isDefault: true })).layersDir;
  await publishedDemoChain(loadLayerSet(layersDir, 'demo'), new Store(storeDir), repo);
}, 300_000);

afterAll(() => removeTree(tmp));

describe('issue 18, case by case', () => {
  it('1: mirror --to a folder that looks like a mirror (packages/) but is none: exit 2 naming what is there, nothing deleted; an empty folder is mirrored and marked, and pushed to again', async () => {
    const checkout = path.join(tmp, 'checkout');
    mkdirSync(path.join(checkout, 'packages', 'app'), { recursive: true });
    mkdirSync(path.join(checkout, 'src'));
    writeFileSync(path.join(checkout, 'packages', 'app', 'package.json'), '{"name": "app"}\n');
    writeFileSync(path.join(checkout, 'README.md'), '# my project\n');
    writeFileSync(path.join(checkout, 'src', 'main.ts'), 'export {};\n');
    const before = tree(checkout);
    const r = await cli(['mirror', '--repo', repo, '--to', checkout]);
    refused(r, `--to: '${checkout}' is neither empty nor a mirror an earlier \`ost-images mirror\` wrote (it has no ${MIRROR_MARKER} file): it holds 'README.md', 'packages', 'src', which mirroring would delete`, 'a checkout');
    expect(tree(checkout)).toEqual(before);
    expect(readFileSync(path.join(checkout, 'README.md'), 'utf8')).toBe('# my project\n');

    const empty = path.join(tmp, 'empty-mirror');
    mkdirSync(empty);
    const first = await cli(['mirror', '--repo', repo, '--to', empty]);
    expect(first.code, first.stderr).toBe(0);
    expect(existsSync(path.join(empty, MIRROR_MARKER))).toBe(true);
    const again = await cli(['mirror', '--repo', repo, '--to', empty, '--verify']);
    expect(again.code, again.stderr).toBe(0);
    const push = await cli(['mirror', '--repo', repo, '--to', empty]);
    expect(push.code, push.stderr).toBe(0);
    expect(existsSync(path.join(empty, MIRROR_MARKER))).toBe(true);
  });

  it('3: ci gitlab --out a device, a FIFO, a symbolic link or a folder: exit 2, each untouched; a regular file is replaced through a new file', async () => {
    const dir = path.join(tmp, 'out');
    mkdirSync(dir);
    // A device node of our own (the null device's numbers): were it replaced, nothing of the
    // machine's would be.
    const device = path.join(dir, 'null');
    execFileSync('mknod', [device, 'c', '1', '3']);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const target = path.join(dir, 'target.yml');
    writeFileSync(target, 'precious\n');
    const link = path.join(dir, 'link.yml');
    symlinkSync(target, link);
    const folder = path.join(dir, 'folder');
    mkdirSync(folder);
    const gen = (out: string) => cli(['ci', 'gitlab', '--layers-dir', layersDir, '--out', out]);
    for (const [out, kind] of [
      [device, 'a device'],
      [fifo, 'a FIFO'],
      [link, 'a symbolic link'],
      [folder, 'a directory'],
    ] as const) {
      refused(await gen(out), `--out: '${out}' is ${kind}; --out writes only a regular file (a new one, or replacing one)`, kind);
    }
    expect(statSync(device).isCharacterDevice()).toBe(true);
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect(readdirSync(folder)).toEqual([]);
    const file = path.join(dir, 'pipeline.yml');
    writeFileSync(file, 'old\n');
    const inode = statSync(file).ino;
    const r = await gen(file);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^# Generated by/);
    expect(statSync(file).ino).not.toBe(inode);
  });

  it('4: --keep-used-within of 400 digits (Infinity) is refused alike by prune, publish, nightly, promote and the CI settings, before any work', async () => {
    const days = `is not a positive number of days (more than 0, at most 3650)`;
    const production = path.join(tmp, 'production-empty');
    mkdirSync(production);
    const freshStore = path.join(tmp, 'store-never');
    const out = path.join(tmp, 'never.yml');
    const config = path.join(tmp, 'ci-huge.yaml');
    writeFileSync(config, `keep_used_within: ${HUGE}\n`);
    const repoFiles = tree(repo);
    const cases: [string[], Record<string, string>, string][] = [
      [['prune', '--repo', repo, '--keep', '1', '--keep-used-within', HUGE], {}, `--keep-used-within: ${HUGE_QUOTED} ${days}`],
      [['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo, '--keep', '1', '--keep-used-within', HUGE], {}, `--keep-used-within: ${HUGE_QUOTED} ${days}`],
      [['nightly', '--set', 'demo', '--layers-dir', layersDir, '--store', freshStore, '--repo', repo, '--keep', '1', '--keep-used-within', HUGE], {}, `--keep-used-within: ${HUGE_QUOTED} ${days}`],
      [['promote', '--set', 'demo', '--layers-dir', layersDir, '--from', path.join(tmp, 'staging'), '--to', production, '--run', '1', '--keep', '1', '--keep-used-within', HUGE], {}, `--keep-used-within: ${HUGE_QUOTED} ${days}`],
      [['promote', '--set', 'demo', '--layers-dir', layersDir, '--from', path.join(tmp, 'staging'), '--to', production, '--run', '1'], { OST_IMAGES_KEEP: '1', OST_IMAGES_KEEP_USED_WITHIN: HUGE }, `OST_IMAGES_KEEP_USED_WITHIN: ${HUGE_QUOTED} ${days}`],
      [['ci', 'gitlab', '--layers-dir', layersDir, '--keep-used-within', HUGE, '--out', out], {}, `--keep-used-within: must be a positive number of days (more than 0, at most 3650), got ${HUGE_QUOTED}`],
      [['ci', 'gitlab', '--layers-dir', layersDir, '--config', config, '--out', out], {}, `${config}:1: .keep_used_within: must be a positive number of days (more than 0, at most 3650), got number Infinity`],
      [['prune', '--repo', repo, '--keep', HUGE], {}, `--keep: ${HUGE_QUOTED} is not a positive whole number (1 to 1000)`],
    ];
    for (const [args, env, message] of cases) refused(await cli(args, { OST_IMAGES_KEEP_USED_WITHIN: '', OST_IMAGES_KEEP: '', ...env }), message, args.join(' '));
    expect(tree(repo)).toEqual(repoFiles);
    expect(readdirSync(production)).toEqual([]);
    expect(existsSync(freshStore)).toBe(false);
    expect(existsSync(out)).toBe(false);
  });

  it('5: publish --url (or OST_IMAGES_REPO_URL) holding a newline or a space: exit 2, ost-images.repo unchanged', async () => {
    const repoFile = readFileSync(path.join(repo, 'ost-images.repo'), 'utf8');
    const publish = ['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', repo];
    const cases: [string[], Record<string, string>, string][] = [
      [[...publish, '--url', 'http://x/\ngpgcheck=0'], {}, "--url: 'http://x/\\ngpgcheck=0' is not a usable URL: a control character cannot appear in a URL as it is"],
      [[...publish, '--url', 'http://x/ gpgcheck=0'], {}, "--url: 'http://x/ gpgcheck=0' is not a usable URL: a URL has no spaces"],
      [publish, { OST_IMAGES_REPO_URL: 'http://x/\ngpgcheck=0' }, "OST_IMAGES_REPO_URL: 'http://x/\\ngpgcheck=0' is not a usable URL"],
      [[...publish, '--url', 'https://me:hunter2@x/'], {}, "--url: 'https://me:***@x/' is not a usable URL: a user name or password in a URL would be recorded in ost-images.repo"],
      [['publish', '--rollback', '--repo', repo, '--url', 'http://x/\tgpgcheck=0'], {}, "--url: 'http://x/\\tgpgcheck=0' is not a usable URL"],
    ];
    for (const [args, env, message] of cases) {
      const r = await cli(args, env);
      refused(r, message, args.join(' '));
      expect(r.stderr).not.toContain('hunter2');
    }
    expect(readFileSync(path.join(repo, 'ost-images.repo'), 'utf8')).toBe(repoFile);
  });

  it('6: install -- --installroot=X: a package name dnf would take as an option is refused; neither root is made', async () => {
    const root = path.join(tmp, 'install-root');
    const elsewhere = path.join(tmp, 'elsewhere');
    const r = await cli(['install', '--repo', repo, '--root', root, '--', `--installroot=${elsewhere}`, 'ost-images-demo-base']);
    refused(r, /error: package name '--installroot=\/.* starts with '-', so a program would read it as an option \(ost-images install passes names to dnf/, 'install');
    expect(existsSync(root)).toBe(false);
    expect(existsSync(elsewhere)).toBe(false);
  });

  it('8: no silent no-op on a wrong path: remove-old --root and images --images-dir that do not exist or are files are exit 2; empty existing ones are fine', async () => {
    const file = path.join(tmp, 'plain-file');
    writeFileSync(file, 'x');
    const empty = path.join(tmp, 'empty-dir');
    mkdirSync(empty);
    const missing = path.join(tmp, 'no', 'such', 'path');
    refused(await cli(['remove-old', '--root', missing, '--vm-dir', empty]), `--root: '${missing}': does not exist`, 'remove-old --root missing');
    refused(await cli(['remove-old', '--root', file, '--vm-dir', empty]), `--root: '${file}' is a regular file, not a directory`, 'remove-old --root file');
    refused(await cli(['remove-old', '--root', empty, '--vm-dir', missing]), `--vm-dir: '${missing}': does not exist`, 'remove-old --vm-dir missing');
    refused(await cli(['images', '--images-dir', missing, '--vm-dir', empty]), `--images-dir: '${missing}': does not exist`, 'images missing');
    refused(await cli(['images', '--images-dir', file, '--vm-dir', empty]), `--images-dir: '${file}' is a regular file, not a directory`, 'images file');
    refused(await cli(['images', '--images-dir', empty], { OST_IMAGES_VM_DIR: missing }), `OST_IMAGES_VM_DIR: '${missing}': does not exist`, 'images, OST_IMAGES_VM_DIR missing');
    const ok = await cli(['images', '--images-dir', empty, '--vm-dir', empty, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const none = await cli(['remove-old', '--root', empty, '--vm-dir', empty, '--json']);
    expect(none.code, none.stderr).toBe(0);
    expect((JSON.parse(none.stdout) as { removed: string[] }).removed).toEqual([]);
  });

  it('9: a password in a destination is never repeated; a refused promotion leaves an empty folder empty; install --repo of a missing folder is exit 2; destinations starting with - are refused', async () => {
    const secret = await cli(['mirror', '--repo', repo, '--to', 'rsync://mirror:hunter2@127.0.0.1/m/x']);
    refused(secret, "--to: 'rsync://mirror:***@127.0.0.1/m/x' names a user or password", 'rsync:// with a password');
    expect(secret.stderr).not.toContain('hunter2');
    const ssh = await cli(['mirror', '--repo', repo, '--to', 'deploy:hunter2@web1:/srv/ost']);
    refused(ssh, "--to: 'deploy:***@web1:/srv/ost' holds a password", 'user:password@host:path');
    expect(ssh.stderr).not.toContain('hunter2');

    const production = path.join(tmp, 'production-refused');
    mkdirSync(production);
    const staging = path.join(tmp, 'staging-empty');
    mkdirSync(staging);
    const p = await cli(['promote', '--set', 'demo', '--layers-dir', layersDir, '--from', staging, '--to', production, '--run', '7'], { OST_IMAGES_KEEP: '', OST_IMAGES_KEEP_USED_WITHIN: '', OST_IMAGES_MIRROR: '' });
    expect(p.code, p.stderr).toBe(1);
    expect(p.stderr).toContain('refused; nothing was promoted');
    expect(readdirSync(production)).toEqual([]);

    const missing = path.join(tmp, 'no-repo-here');
    refused(await cli(['install', '--repo', missing, '--root', path.join(tmp, 'r9'), 'ost-images-demo-base']), `--repo: '${missing}': does not exist`, 'install --repo missing');
    expect(existsSync(path.join(tmp, 'r9'))).toBe(false);

    for (const dest of ['-x', '--delete', '-e.sh:x']) {
      refused(await cli(['mirror', '--repo', repo, `--to=${dest}`]), `--to: '${dest}' starts with '-', so a program would read it as an option; for a directory of that name write ./${dest}`, dest);
      expect(existsSync(path.join(ROOT, dest))).toBe(false);
    }
  });
});

describe('7: file-system errors on the paths a user gives are exit 2 naming the path (no stack trace)', () => {
  // Each command with each path option it takes, as a folder or a file option, given a name too
  // long for the file system, a file where a folder is expected and a folder where a file is.
  const folderOptions: [string, (p: string) => string[]][] = [
    ['mirror --to', (p) => ['mirror', '--repo', repo, '--to', p]],
    ['mirror --repo', (p) => ['mirror', '--repo', p, '--to', path.join(tmp, 'never')]],
    ['usage --repo', (p) => ['usage', '--repo', p, '--access-log', path.join(tmp, 'plain-file')]],
    ['install --root', (p) => ['install', '--repo', repo, '--root', p, 'ost-images-demo-base']],
    ['install --repo', (p) => ['install', '--repo', p, '--root', path.join(tmp, 'never'), 'ost-images-demo-base']],
    ['remove-old --root', (p) => ['remove-old', '--root', p]],
    ['remove-old --vm-dir', (p) => ['remove-old', '--root', tmp, '--vm-dir', p]],
    ['images --images-dir', (p) => ['images', '--images-dir', p, '--vm-dir', tmp]],
    ['images --vm-dir', (p) => ['images', '--images-dir', tmp, '--vm-dir', p]],
    ['vm ls --vm-dir', (p) => ['vm', 'ls', '--vm-dir', p]],
    ['vm stop --vm-dir', (p) => ['vm', 'stop', 'x', '--vm-dir', p]],
    ['vm create --vm-dir', (p) => ['vm', 'create', 'x', '--layer', 'base', '--vm-dir', p]],
    ['vm create --images-dir', (p) => ['vm', 'create', 'x', '--layer', 'base', '--images-dir', p, '--vm-dir', tmp]],
    ['publish --repo', (p) => ['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', storeDir, '--repo', p]],
    ['ci gitlab --layers-dir', (p) => ['ci', 'gitlab', '--layers-dir', p]],
    ['cache ls --store', (p) => ['cache', 'ls', '--set', 'demo', '--layers-dir', layersDir, '--store', p]],
  ];
  const fileOptions: [string, (p: string) => string[]][] = [
    ['ci gitlab --out', (p) => ['ci', 'gitlab', '--layers-dir', layersDir, '--out', p]],
    ['ci gitlab --check', (p) => ['ci', 'gitlab', '--layers-dir', layersDir, '--check', p]],
    ['ci gitlab --config', (p) => ['ci', 'gitlab', '--layers-dir', layersDir, '--config', p]],
    ['usage --access-log', (p) => ['usage', '--repo', repo, '--access-log', p]],
  ];
  const aFile = () => {
    const f = path.join(tmp, 'plain-file');
    writeFileSync(f, 'x');
    return f;
  };
  const aFolder = () => {
    const d = path.join(tmp, 'a-folder');
    mkdirSync(d, { recursive: true });
    return d;
  };

  /** The error names the option (or, for a settings file, the file) and quotes the path. */
  const namesIt = (what: string) => {
    const option = what.split(' ').at(-1)!;
    return option === '--config' ? /error: (--config: '|invalid CI settings:\n {2}\S+: \(top level\): cannot read: not a regular file)/ : new RegExp(`error: ${option}: '`);
  };

  it.each(folderOptions)('%s: a too-long name, a file where a folder is expected, a path through a file', async (what, args) => {
    const long = path.join(tmp, LONG);
    const file = aFile();
    const before = tree(tmp).filter((f) => !f.startsWith('store'));
    for (const [p, why] of [
      [long, 'a name too long'],
      [file, 'a file'],
      [path.join(file, 'sub'), 'a path through a file'],
    ] as const) {
      refused(await cli(args(p), { OST_IMAGES_VM_DIR: '', OST_IMAGES_DIR: '' }), namesIt(what), `${what} with ${why}`);
    }
    expect(tree(tmp).filter((f) => !f.startsWith('store'))).toEqual(before);
  });

  it.each(fileOptions)('%s: a too-long name, a folder where a file is expected', async (what, args) => {
    const long = path.join(tmp, LONG);
    const folder = aFolder();
    for (const [p, why] of [
      [long, 'a name too long'],
      [folder, 'a folder'],
    ] as const) {
      refused(await cli(args(p)), namesIt(what), `${what} with ${why}`);
    }
    expect(readdirSync(folder)).toEqual([]);
  });
});
