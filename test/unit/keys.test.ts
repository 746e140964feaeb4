// Input keys: any single input changes the key of its layer and of every layer above it, and of
// no other; nothing changed, nothing changes; the order of keys in YAML does not matter.
import { describe, expect, it } from 'vitest';
import { loadLayerSet } from '../../src/definitions/load.js';
import { canonicalJson, computeKeys, manifestDiff } from '../../src/plan/keys.js';
import { NO_UPSTREAM as NONE } from '../../src/plan/upstream.js';
import { writeLayerSet } from '../helpers/layerset.js';
import { demoSet } from '../helpers/sets.js';

const BASE_FILES: Record<string, string> = {
  ...demoSet({ isDefault: true }),
  'engine-installed/layer.yaml': 'description: Engine\nparent: upgrade\nsteps:\n  - install: [postgresql]\n  - run: setup.sh\n  - upload: {from: app.conf, to: /etc/app.conf}\n',
  'engine-installed/setup.sh': '#!/bin/sh\necho setup\n',
  'engine-installed/app.conf': 'port=80\n',
  'upgrade/layer.yaml': 'description: All updates\nparent: base\nupstream: [http://mirror.example/dists/updates/InRelease]\nsteps:\n  - upgrade: true\n',
};

const UP = 'http://mirror.example/dists/updates/InRelease';

function keys(change: Record<string, string> = {}, digests: Record<string, string> = { [UP]: 'a'.repeat(64) }): Record<string, string> {
  const ls = loadLayerSet(writeLayerSet({ ...BASE_FILES, ...change }).layersDir, 'demo');
  return Object.fromEntries([...computeKeys(ls, { digests, dates: {} })].map(([l, v]) => [l, v.key]));
}

const before = keys();
const changedLayers = (after: Record<string, string>) => Object.keys(before).filter((l) => before[l] !== after[l]).sort();

describe('input keys', () => {
  it('are stable: the same definitions give the same keys', () => {
    expect(keys()).toEqual(before);
    expect(Object.values(before).every((k) => /^[0-9a-f]{64}$/.test(k))).toBe(true);
  });

  it.each([
    ['one byte of a script', { 'engine-installed/setup.sh': '#!/bin/sh\necho setuP\n' }, ['engine-installed']],
    ['an uploaded file', { 'engine-installed/app.conf': 'port=81\n' }, ['engine-installed']],
    ['a package name', { 'host-installed/layer.yaml': 'description: Host\nparent: upgrade\nsteps:\n  - install: [qemu-kvm]\n' }, ['host-installed']],
    ['the parent (upgrade steps)', { 'upgrade/layer.yaml': 'parent: base\nupstream: [http://mirror.example/dists/updates/InRelease]\nsteps:\n  - upgrade: true\n  - install: [vim]\n' }, ['engine-installed', 'host-installed', 'upgrade']],
    ['the base packages', { 'base/layer.yaml': 'base:\n  mmdebstrap: {packages: [openssh-server, curl]}\n' }, ['base', 'engine-installed', 'host-installed', 'upgrade']],
    ['the mirror', { 'set.yaml': BASE_FILES['set.yaml']!.replace('http://deb.debian.org/debian', 'http://mirror.example/debian') }, ['base', 'engine-installed', 'host-installed', 'upgrade']],
  ])('change %s: that layer and the layers above it', (_what, change, expected) => {
    expect(changedLayers(keys(change))).toEqual(expected);
  });

  it("change of the set's root key: the base (the key is written into it and shipped with it) and every layer above", () => {
    const ls = loadLayerSet(writeLayerSet(BASE_FILES).layersDir, 'demo');
    const k = (rootKey?: string) => Object.fromEntries([...computeKeys(ls, { digests: { [UP]: 'a'.repeat(64) }, dates: {} }, rootKey)].map(([l, v]) => [l, v.key]));
    const [a, b] = [k('1'.repeat(64)), k('2'.repeat(64))];
    expect(Object.keys(a).filter((l) => a[l] !== b[l]).sort()).toEqual(['base', 'engine-installed', 'host-installed', 'upgrade']);
    expect(k('1'.repeat(64))).toEqual(a);
    // No key yet (a plan before the first base build): recorded as unknown, never as some key.
    expect(computeKeys(ls, NONE, undefined).get('base')!.manifest.rootKey).toBe('unknown');
    expect(computeKeys(ls, NONE, '1'.repeat(64)).get('upgrade')!.manifest.rootKey).toBeUndefined();
    expect(manifestDiff(computeKeys(ls, NONE, '1'.repeat(64)).get('base')!.manifest, computeKeys(ls, NONE, '2'.repeat(64)).get('base')!.manifest)).toEqual([
      `.rootKey: "${'1'.repeat(64)}" -> "${'2'.repeat(64)}"`,
    ]);
  });

  it('change with an upstream digest: the layer declaring it and the layers above it', () => {
    expect(changedLayers(keys({}, { [UP]: 'b'.repeat(64) }))).toEqual(['engine-installed', 'host-installed', 'upgrade']);
  });

  it('ignore what does not shape the image: descriptions, package naming, YAML key order and layout', () => {
    const reordered = keys({
      'engine-installed/layer.yaml': 'steps:\n  - install: [postgresql]\n  - run: setup.sh\n  - upload: {to: /etc/app.conf, from: app.conf}\nparent: upgrade\ndescription: Something else\n',
      'set.yaml': BASE_FILES['set.yaml']!.replace('default: true', 'default: false'),
    });
    expect(changedLayers(reordered)).toEqual([]);
  });

  it('canonical JSON sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined, x: 0 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,{"x":0,"z":1}]},"b":1}');
  });

  it('explain a change as a diff of manifests', () => {
    const ls1 = loadLayerSet(writeLayerSet(BASE_FILES).layersDir, 'demo');
    const ls2 = loadLayerSet(writeLayerSet({ ...BASE_FILES, 'engine-installed/setup.sh': 'changed\n', 'upgrade/layer.yaml': 'parent: base\nupstream: [http://mirror.example/dists/updates/InRelease]\nsteps:\n  - upgrade: true\n  - install: [vim]\n' }).layersDir, 'demo');
    const [a, b] = [computeKeys(ls1).get('engine-installed')!.manifest, computeKeys(ls2).get('engine-installed')!.manifest];
    const diff = manifestDiff(a, b);
    expect(diff).toHaveLength(2);
    expect(diff[0]).toMatch(/^parent 'upgrade' changed \(key [0-9a-f]{12}\.\.\. -> [0-9a-f]{12}\.\.\.\)$/);
    expect(diff[1]).toMatch(/^\.steps\[1\]\.run\.sha256: "[0-9a-f]{64}" -> "[0-9a-f]{64}"$/);
    const up = manifestDiff(computeKeys(ls1).get('upgrade')!.manifest, computeKeys(ls2).get('upgrade')!.manifest);
    expect(up).toEqual(['.steps[1].install[0]: added "vim"']);
  });
});
