// Temporary directories of the test run: all under one directory made by test/global-setup.ts and
// removed when the run ends. OST_TEST_KEEP=1 keeps it for a post-mortem (a name of the tests'
// own: OST_IMAGES_KEEP is promote's --keep).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function testTmp(label: string): string {
  return mkdtempSync(path.join(process.env.OST_TEST_TMP ?? os.tmpdir(), `${label}-`));
}

/** Removes a tree, unless something is still mounted in it: never delete through a leaked mount. */
export function removeTree(dir: string): void {
  if (process.env.OST_TEST_KEEP === '1') return;
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(`${dir}/`)));
  if (mounted.length > 0) {
    process.stderr.write(`not removing ${dir}: still mounted there: ${mounted.join(' ')}\n`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}
