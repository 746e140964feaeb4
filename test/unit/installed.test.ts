// Reading an installed tree (what `vm create`, `vm ls` and `images` start from): builds, stable
// names and keys, in the one-directory layout and in a folder per set, with and without build
// records beside the images. Plain files: the images' contents do not matter here.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveInstalled, scanInstalled } from '../../src/consume/installed.js';
import { removeTree } from '../helpers/tmp.js';

const tmp = mkdtempSync(path.join(process.env.OST_TEST_TMP ?? os.tmpdir(), 'installed-'));
afterAll(() => removeTree(tmp));

function tree(name: string, files: Record<string, string | { link: string }>): string {
  const dir = path.join(tmp, name);
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    if (typeof c === 'string') writeFileSync(path.join(dir, f), c);
    else symlinkSync(c.link, path.join(dir, f));
  }
  return dir;
}

describe('one directory, no build records', () => {
  const dir = tree('flat', {
    'debian12_id_rsa': 'k', 'debian12_id_rsa.pub': 'k',
    'debian12-base-12-20260101000000.qcow2': '', 'debian12-upgrade-12-20260101000100.qcow2': '',
    'debian12-engine-installed-12-20260101000200.qcow2': '', 'debian12-engine-installed-12-20260102000200.qcow2': '',
    'debian12-engine-installed-flat-12-20260101000200.qcow2': '',
    'debian12-engine-installed.qcow2': { link: 'debian12-engine-installed-12-20260101000200.qcow2' },
    'debian12-base.qcow2': { link: 'debian12-base-12-20260101000000.qcow2' },
    'debian12-upgrade.qcow2': { link: 'gone-12-1.qcow2' },
    // A set whose name extends another's: its names are its own.
    'debian12-lts_id_rsa': 'k', 'debian12-lts-base-12-20260301000000.qcow2': '',
    'debian12-lts-base.qcow2': { link: 'debian12-lts-base-12-20260301000000.qcow2' },
    'stray.qcow2': '',
  });

  it('finds sets, layers, builds newest first, and where each stable name points', () => {
    const sets = scanInstalled(dir);
    expect(sets.map((s) => s.set)).toEqual(['debian12', 'debian12-lts']);
    const d = sets[0]!;
    expect(d.key).toBe(path.join(dir, 'debian12_id_rsa'));
    expect(d.layers.map((l) => l.layer)).toEqual(['base', 'engine-installed', 'engine-installed-flat', 'upgrade']);
    const engine = d.layers.find((l) => l.layer === 'engine-installed')!;
    expect(engine.builds.map((b) => b.release)).toEqual(['20260102000200', '20260101000200']);
    expect(engine.stable).toEqual({ path: path.join(dir, 'debian12-engine-installed.qcow2'), target: path.join(dir, 'debian12-engine-installed-12-20260101000200.qcow2') });
    expect(d.layers.find((l) => l.layer === 'upgrade')!.stable!.target).toBeNull();
    expect(sets[1]!.layers.map((l) => [l.layer, l.builds.length, !!l.stable])).toEqual([['base', 1, true]]);
  });

  it('resolves a stable name to the exact build it points at now (not the newest file)', () => {
    const r = resolveInstalled(dir, 'debian12', 'engine-installed');
    expect(r.build).toMatchObject({ set: 'debian12', layer: 'engine-installed', version: '12', release: '20260101000200' });
    expect(r.build.file).toBe(path.join(dir, 'debian12-engine-installed-12-20260101000200.qcow2'));
    expect(r.key).toBe(path.join(dir, 'debian12_id_rsa'));
  });

  it.each([
    ['nosuch', 'base', "set 'nosuch' is not installed in"],
    ['debian12', 'host-installed', "layer 'host-installed' of set 'debian12' is not installed in"],
    ['debian12', 'engine-installed-flat', "layer 'engine-installed-flat' of set 'debian12' is not installed"],
    ['debian12', 'upgrade', 'is a dangling link'],
  ])('%s/%s is bad input', (set, layer, message) => {
    expect(() => resolveInstalled(dir, set, layer)).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringContaining(message) }));
  });

  it('no tree at all is bad input, and scans as empty', () => {
    expect(scanInstalled(path.join(tmp, 'none'))).toEqual([]);
    expect(() => resolveInstalled(path.join(tmp, 'none'), 'debian12', 'base')).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});

describe('a folder per set, with build records', () => {
  const rec = (layer: string, release: string) => JSON.stringify({ schema: 1, set: 'el9', layer, version: '9', release, image: `${layer}-9-${release}.qcow2` });
  const dir = tree('folders', {
    'el9/base-9-20260101000000.qcow2': '', 'el9/base-9-20260101000000.build.json': rec('base', '20260101000000'),
    'el9/app-9-20260101000100.qcow2': '', 'el9/app-9-20260101000100.build.json': rec('app', '20260101000100'),
    'el9-app.qcow2': { link: 'el9/app-9-20260101000100.qcow2' },
  });

  it('reads set and layer from the records and follows the link into the folder', () => {
    const r = resolveInstalled(dir, 'el9', 'app');
    expect(r.build.file).toBe(path.join(dir, 'el9', 'app-9-20260101000100.qcow2'));
    expect(r.build.record?.layer).toBe('app');
    expect(r.key).toBeUndefined();
    expect(scanInstalled(dir)[0]!.layers.map((l) => l.layer)).toEqual(['app', 'base']);
  });
});
