// scripts/test's closing lines (scripts/test-summary.mjs, a vitest reporter) on real vitest runs of
// tiny test files in a scratch directory: a run whose only failure is a beforeAll, or an error
// outside every test, must not close with "0 failed" (issue 18: a red run said "724 passed, 0
// failed"), and every skipped test is named.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { removeTree, testTmp } from '../helpers/tmp.js';

const tmp = testTmp('test-summary');
afterAll(() => removeTree(tmp));

/** vitest run in `dir` with the summary reporter only: its exit status and output. */
function vitest(dir: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir, '--reporter', path.join(ROOT, 'scripts', 'test-summary.mjs')], {
    cwd: dir,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

function project(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  for (const [f, text] of Object.entries({ 'package.json': '{"type": "module"}\n', ...files })) {
    writeFileSync(path.join(dir, f), text, { flag: 'w' });
  }
  return dir;
}

const closing = (out: string) => out.trimEnd().split('\n').filter((l) => /^(tests|failed|skipped): /.test(l));

describe('the closing line of scripts/test', () => {
  it('a suite whose beforeAll fails, an error outside the tests and a skipped test: counted and named', async () => {
    const dir = project('red', {
      'a.test.ts': "import { beforeAll, describe, expect, it } from 'vitest';\ndescribe('setup', () => {\n  beforeAll(() => { throw new Error('the fixture broke'); });\n  it('needs the fixture', () => expect(1).toBe(1));\n});\n",
      'b.test.ts':
        "import { expect, it } from 'vitest';\nit('passes', () => expect(1).toBe(1));\nit.skip('not today', () => undefined);\nit('leaves an error behind', () => { setTimeout(() => { throw new Error('late failure'); }, 1); return new Promise((r) => setTimeout(r, 200)); });\n",
    });
    const r = await vitest(dir);
    expect(r.code, r.out).toBe(1);
    expect(closing(r.out)).toEqual([
      'failed: a.test.ts > setup: the fixture broke',
      'failed: an error outside the tests: late failure',
      'skipped: b.test.ts > not today',
      'tests: 2 passed, 2 failed (1 suite whose hooks or loading failed, 1 test in them not run; 1 error outside the tests), 1 skipped',
    ]);
  }, 120_000);

  it('a failing test, and a green run', async () => {
    const red = await vitest(project('one', { 'c.test.ts': "import { expect, it } from 'vitest';\nit('is wrong', () => expect(1).toBe(2));\nit('is right', () => expect(1).toBe(1));\n" }));
    expect(red.code, red.out).toBe(1);
    expect(closing(red.out)).toEqual(['tests: 1 passed, 1 failed, 0 skipped']);
    const green = await vitest(project('green', { 'd.test.ts': "import { expect, it } from 'vitest';\nit('is right', () => expect(1).toBe(1));\n" }));
    expect(green.code, green.out).toBe(0);
    expect(closing(green.out)).toEqual(['tests: 1 passed, 0 failed, 0 skipped']);
  }, 120_000);
});
