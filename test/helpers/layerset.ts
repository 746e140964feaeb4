// Writes a layer set described as { relative path: content } into a fresh temporary directory.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const VALID_SET = {
  'set.yaml': [
    'distro:',
    '  family: debian',
    '  name: Debian',
    '  version: "12"',
    '  codename: bookworm',
    '  mirror: http://deb.debian.org/debian',
    'package:',
    '  prefix: ost-images',
    '  default: true',
    '',
  ].join('\n'),
  'base/layer.yaml': 'base:\n  mmdebstrap:\n    packages: [openssh-server]\n',
  'app/layer.yaml': 'parent: base\nsteps:\n  - install: [curl]\n  - run: go.sh\n',
  'app/go.sh': '#!/bin/sh\ntrue\n',
};

const made: string[] = [];
process.on('exit', () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

export function writeLayerSet(files: Record<string, string>, setName = 'demo'): { layersDir: string; setDir: string } {
  const layersDir = mkdtempSync(path.join(os.tmpdir(), 'ost-layers-'));
  made.push(layersDir);
  const setDir = path.join(layersDir, setName);
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(setDir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  return { layersDir, setDir };
}
