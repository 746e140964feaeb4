// Host programs checked before a command does anything, through the real CLI: a PATH of symlinks
// to every program some command runs but the ones a case takes away. The command exits 2 naming
// every missing program, what it is for and its apt and dnf package, and writes nothing; doctor
// reports the same programs missing.
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../src/commands/doctor.js';
import { ALL_TOOLS, type ToolName } from '../../src/tools/registry.js';
import { findTool } from '../../src/tools/run.js';
import { cli } from '../helpers/cli.js';
import { VALID_SET, writeLayerSet } from '../helpers/layerset.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('tools-check-cli');
afterAll(() => removeTree(tmp));

/**
 * A directory of symlinks to every program of the registry found on this host's PATH, except
 * `removed`. run() adds /usr/sbin and /sbin to any PATH, so only programs that live elsewhere
 * can be taken away (checked, so a case cannot pass by finding nothing missing).
 */
function pathWithout(removed: ToolName[]): string {
  for (const t of removed) expect(findTool(t, '/usr/sbin:/sbin'), `${t} is in /usr/sbin or /sbin: it cannot be taken off the PATH`).toBeUndefined();
  const dir = path.join(tmp, `path-without-${removed.join('-')}`);
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  for (const t of Object.keys(ALL_TOOLS) as ToolName[]) {
    const found = findTool(t);
    if (found && !removed.includes(t)) symlinkSync(found, path.join(dir, t));
  }
  return dir;
}

/** How the message names a missing program: what it is for, and its packages. */
const named = (t: ToolName): string => `  ${t}: ${ALL_TOOLS[t]!.why}`;
const packages = (t: ToolName): string => `package ${ALL_TOOLS[t]!.debian} (apt), ${ALL_TOOLS[t]!.fedora} (dnf)`;

let layersDir: string;
beforeAll(() => {
  ({ layersDir } = writeLayerSet(VALID_SET));
});

describe('a command with programs missing from PATH', () => {
  // [what, argv (with <tmp> for the test's directory), programs taken away, paths that must not appear]
  const cases: [string, (t: string) => string[], ToolName[], string[]][] = [
    [
      'all: building (mmdebstrap base), packaging, publishing',
      (t) => ['all', '--set', 'demo', '--layers-dir', layersDir, '--store', `${t}/store`, '--repo', `${t}/repo`, '--root', `${t}/root`, '--backend', 'chroot'],
      ['mmdebstrap', 'rpmbuild', 'createrepo_c'],
      ['store', 'repo', 'root'],
    ],
    [
      'publish --sign-key: signing',
      (t) => ['publish', '--set', 'demo', '--layers-dir', layersDir, '--store', `${t}/store`, '--repo', `${t}/repo`, '--sign-key', 'ci@example.org'],
      ['rpmsign', 'gpg'],
      ['store', 'repo'],
    ],
    ['mirror: rsync', (t) => ['mirror', '--repo', `${t}/repo`, '--to', `${t}/mirror`], ['rsync'], ['repo', 'mirror']],
  ];

  it.each(cases)('%s: exit 2, every missing program named with why and its packages, nothing written', async (_what, argv, removed, untouched) => {
    const dir = path.join(tmp, removed.join('-'));
    mkdirSync(dir);
    const args = argv(dir);
    const r = await cli(args, { PATH: pathWithout(removed) });
    expect(r.code, r.stderr).toBe(2);
    const n = removed.length;
    expect(r.stderr).toContain(`\`ost-images ${args[0]}\` needs ${n === 1 ? 'a program that is' : `${n} programs that are`} not installed (nothing was done):\n`);
    for (const t of removed) {
      const line = r.stderr.split('\n').find((l) => l.startsWith(named(t)));
      expect(line, `${t} in:\n${r.stderr}`).toBeDefined();
      expect(line).toContain(packages(t));
    }
    // Only those: every other program is on the PATH.
    expect(r.stderr.split('\n').filter((l) => /^ {2}[\w.-]+: /.test(l))).toHaveLength(n);
    expect(r.stderr).toContain(`'apt-get install ${[...new Set(removed.map((t) => ALL_TOOLS[t]!.debian))].join(' ')}'`);
    expect(r.stderr).toContain(`'dnf install ${[...new Set(removed.map((t) => ALL_TOOLS[t]!.fedora))].join(' ')}'`);
    expect(r.stderr).not.toMatch(/^ +at |unexpected failure/m);
    expect(r.stdout).toBe('');
    for (const p of untouched) expect(existsSync(path.join(dir, p)), p).toBe(false);
  });
});

describe('doctor', () => {
  const removed: ToolName[] = ['mmdebstrap', 'rpmbuild', 'createrepo_c'];

  it('--json: every command with what it runs, the missing programs, why, and their packages', async () => {
    const r = await cli(['doctor', '--json'], { PATH: pathWithout(removed) });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    for (const t of removed) {
      expect(report.missing).toContain(t);
      expect(report.tools.find((x) => x.tool === t)).toMatchObject({ found: null, why: ALL_TOOLS[t]!.why, debian: ALL_TOOLS[t]!.debian, fedora: ALL_TOOLS[t]!.fedora });
    }
    // Present ones are found where the PATH has them.
    expect(report.tools.find((x) => x.tool === 'qemu-img')!.found).toBe(path.join(tmp, `path-without-${removed.join('-')}`, 'qemu-img'));
    const all = report.commands.find((c) => c.command === 'all')!;
    for (const t of removed) expect(all.missing).toContain(t);
    expect(report.commands.find((c) => c.command === 'package')!.missing).toEqual(['rpmbuild']);
    expect(report.commands.find((c) => c.command === 'validate')).toEqual({ command: 'validate', rules: [], missing: [] });
    expect(report.install.debian).toMatch(/^apt-get install /);
    for (const t of removed) {
      expect(report.install.debian!.split(' ')).toContain(ALL_TOOLS[t]!.debian);
      expect(report.install.fedora!.split(' ')).toContain(ALL_TOOLS[t]!.fedora);
    }
  });

  it('for people: the missing programs and what installs them, each command, each program', async () => {
    const r = await cli(['doctor'], { PATH: pathWithout(removed) });
    expect(r.code, r.stderr).toBe(0);
    const missingLine = r.stderr.split('\n').find((l) => l.startsWith('Missing: '))!;
    for (const t of removed) expect(missingLine).toContain(t);
    expect(r.stderr).toMatch(/^ {2}Debian\/Ubuntu: apt-get install .*\brpm\b/m);
    expect(r.stderr).toMatch(/^ {2}Fedora\/EL: +dnf install .*\brpm-build\b/m);
    expect(r.stderr).toMatch(/^ {2}package: MISSING rpmbuild$/m);
    expect(r.stderr).toMatch(/^ {4}always: !rpmbuild$/m);
    expect(r.stderr).toMatch(/^ {2}rpmbuild +MISSING +rpm +rpm-build +packaging layers as RPMs$/m);
  });
});
