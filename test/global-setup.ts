import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTree } from './helpers/tmp.js';

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ost-test-'));
  process.env.OST_TEST_TMP = dir;
  return () => removeTree(dir);
}
