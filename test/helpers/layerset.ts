// Writes a layer set described as { relative path: content } into a fresh temporary directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { testTmp } from './tmp.js';

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

export function writeLayerSet(files: Record<string, string>, setName = 'demo'): { layersDir: string; setDir: string } {
  const layersDir = testTmp('layers');
  const setDir = path.join(layersDir, setName);
  for (const [rel, content] of Object.entries(files)) {
    if (content === undefined) continue;
    const file = path.join(setDir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  return { layersDir, setDir };
}
