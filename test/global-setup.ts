// Once per test run (vitest calls this for each project and for the run itself): the one temporary
// folder every test's files go under (helpers/tmp.ts), and, for the system tier, libvirt. Its
// files run two at a time (vitest.config.ts), and two of them use libvirt; were each to start the
// daemons when none answers and stop them at its end, one could stop libvirt under the other. So
// the tier starts it here, when it is not running, and stops what it started after the last file.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureLibvirt } from './helpers/libvirt.js';
import { removeTree } from './helpers/tmp.js';
import { findTool } from '../src/tools/run.js';

let tmpMade = false;

export default async function setup(project?: { name?: string }): Promise<() => Promise<void>> {
  const undo: (() => Promise<void> | void)[] = [];
  if (!tmpMade) {
    tmpMade = true;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ost-test-'));
    process.env.OST_TEST_TMP = dir;
    undo.push(() => removeTree(dir));
  }
  // Without libvirt installed, the tests that need it say so themselves; the others still run.
  if (project?.name === 'system' && findTool('virsh') && findTool('libvirtd')) {
    const pidDir = mkdtempSync(path.join(os.tmpdir(), 'ost-test-libvirt-'));
    const stop = await ensureLibvirt(pidDir);
    undo.push(async () => {
      await stop();
      rmSync(pidDir, { recursive: true, force: true });
    });
  }
  return async () => {
    for (const u of undo.reverse()) await u();
  };
}
