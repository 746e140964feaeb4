import { describe, expect, it } from 'vitest';
import { planGc } from '../../src/plan/gc.js';
import type { BuildRecord } from '../../src/records/build.js';

function b(layer: string, release: string, parent?: BuildRecord): BuildRecord {
  return {
    schema: 1, set: 's', layer, version: '1', release, image: `${layer}-1-${release}.qcow2`,
    parent: parent && { layer: parent.layer, version: '1', release: parent.release, image: parent.image },
    backend: 't', builtAt: '', seconds: 0, virtualSize: 0, allocatedSize: 0,
  };
}
const ids = (l: BuildRecord[]) => l.map((x) => `${x.layer}@${x.release}`).sort();

describe('cache gc keeps', () => {
  const base1 = b('base', '1');
  const base2 = b('base', '2');
  const up1 = b('upgrade', '1', base1);
  const up2 = b('upgrade', '2', base2);
  const eng1 = b('engine', '1', up1);
  const eng2 = b('engine', '2', up1);
  const eng3 = b('engine', '3', up2);
  const all = [base1, base2, up1, up2, eng1, eng2, eng3];

  it('the current builds, the newest per layer, and every build they are made on', () => {
    const d = planGc(all, [base2, up2, eng3], { keep: 1, published: new Set() });
    expect(ids(d.keep)).toEqual(['base@2', 'engine@3', 'upgrade@2']);
    expect(ids(d.remove)).toEqual(['base@1', 'engine@1', 'engine@2', 'upgrade@1']);
  });

  it('a parent no longer newest but needed by a kept child', () => {
    const d = planGc(all, [base2, up2, eng2], { keep: 1, published: new Set() });
    expect(ids(d.keep)).toEqual(['base@1', 'base@2', 'engine@2', 'engine@3', 'upgrade@1', 'upgrade@2']);
    expect(ids(d.remove)).toEqual(['engine@1']);
  });

  it('published builds and their chains', () => {
    const d = planGc(all, [base2, up2, eng3], { keep: 1, published: new Set(['engine@1']) });
    expect(ids(d.remove)).toEqual(['engine@2']);
  });
});
