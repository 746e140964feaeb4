// Retention by use: the "used" rule of planRetention, by example and as a property over random
// layer graphs, usage histories, keeps and windows.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nvr, planRetention, usedReason, type UsedWithin } from '../../src/plan/retention.js';
import type { PackageDeps } from '../../src/core/rpmdeps.js';

const DAY = 86_400_000;
const NOW = new Date('2026-11-29T12:00:00Z');
const key = (name: string, release: string) => `${name} = 12-${release}`;
function build(name: string, release: string, parent?: PackageDeps): PackageDeps {
  return { name, version: '12', release, provides: [key(name, release)], requires: parent ? [key(parent.name, parent.release)] : [] };
}
const used = (entries: [PackageDeps, number, number?][], withinDays: number): UsedWithin => ({
  usage: new Map(entries.map(([p, daysAgo, downloads]) => [nvr(p), { downloads: downloads ?? 1, lastDownloaded: new Date(NOW.getTime() - daysAgo * DAY).toISOString().replace('.000Z', 'Z') }])),
  withinDays,
  now: NOW,
});
const names = (l: PackageDeps[]) => l.map(nvr).sort();

describe('the used rule, by example: base -> upgrade -> engine-installed', () => {
  const base1 = build('base', '20261101000000');
  const up1 = build('upgrade', '20261101000100', base1);
  const eng1 = build('engine-installed', '20261101000200', up1);
  const base2 = build('base', '20261120000000');
  const up2 = build('upgrade', '20261120000100', base2);
  const eng2 = build('engine-installed', '20261120000200', up2);
  const eng3 = build('engine-installed', '20261125000200', up2);
  const repo = [base1, up1, eng1, base2, up2, eng2, eng3];

  it('an old engine build downloaded 2 days ago is kept with its whole chain; the reason names the download', () => {
    const d = planRetention(repo, 1, [], used([[eng1, 2.1, 3]], 7));
    expect(names(d.keep)).toEqual(names([base1, up1, eng1, base2, up2, eng3]));
    expect(names(d.remove)).toEqual(names([eng2]));
    expect(d.rules.get(eng1)).toEqual([{ rule: 'used', reason: 'downloaded 3 times, last 2026-11-27T09:36:00Z (2 days ago, within 7)' }]);
    expect(d.rules.get(up1)).toEqual([{ rule: 'required', reason: `required by ${nvr(eng1)}` }]);
    expect(d.rules.get(base1)).toEqual([{ rule: 'required', reason: `required by ${nvr(up1)}` }]);
    expect(d.rules.get(eng3)![0]!.rule).toBe('newest');
  });

  it('a download outside the window keeps nothing', () => {
    const d = planRetention(repo, 1, [], used([[eng1, 7.01]], 7));
    expect(names(d.remove)).toEqual(names([base1, up1, eng1, eng2]));
  });

  it('a lower layer downloaded on its own (an upgrade build a machine installs directly) is kept with what it needs, not with its dependents', () => {
    const d = planRetention(repo, 1, [], used([[up1, 1]], 7));
    expect(names(d.keep)).toEqual(names([base1, up1, base2, up2, eng3]));
  });

  it('a build both newest and used lists both rules', () => {
    const d = planRetention(repo, 1, [], used([[eng3, 0, 1]], 7));
    expect(d.rules.get(eng3)!.map((r) => r.rule)).toEqual(['newest', 'used']);
    expect(d.rules.get(eng3)![1]!.reason).toBe('downloaded 1 time, last 2026-11-29T12:00:00Z (today, within 7)');
    expect(d.reasons.get(eng3)).toMatch(/newest/);
  });

  it('partial downloads show in the reason; a download stamped after now (a clock ahead) is within', () => {
    expect(usedReason({ downloads: 0, partial: 2, lastDownloaded: '2026-11-28T12:00:00Z' }, 3, NOW)).toBe('downloaded 0 times (+2 partial), last 2026-11-28T12:00:00Z (1 day ago, within 3)');
    const d = planRetention(repo, 1, [], used([[eng2, -0.5]], 1));
    expect(d.rules.get(eng2)![0]!.rule).toBe('used');
  });

  it('usage of builds the repository no longer has changes nothing', () => {
    const gone = build('engine-installed', '20260101000000', up1);
    expect(names(planRetention(repo, 1, [], used([[gone, 1]], 7)).keep)).toEqual(names(planRetention(repo, 1).keep));
  });

  it('refuses a negative or non-finite window', () => {
    for (const w of [-1, NaN, Infinity]) expect(() => planRetention(repo, 1, [], used([], w))).toThrow(RangeError);
  });
});

// Random repositories: several sets, each a tree of layers (a layer's parent has a lower index);
// every layer has a chain of builds, each build of an upper layer Requires one exact build of its
// parent layer (any of them: old upper builds stay on old parents). Usage: some builds, last
// downloaded between 40 days ago and a day ahead.
interface Model {
  packages: PackageDeps[];
  usage: { nvr: string; daysAgo: number; downloads: number }[];
  keep: number;
  window: number;
}

const modelArb: fc.Arbitrary<Model> = fc
  .record({
    sets: fc.array(
      fc.record({
        parents: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        builds: fc.array(fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), { minLength: 5, maxLength: 5 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    keep: fc.integer({ min: 1, max: 3 }),
    window: fc.double({ min: 0.25, max: 30, noNaN: true }),
    usage: fc.array(fc.record({ pick: fc.nat(), daysAgo: fc.double({ min: -1, max: 40, noNaN: true }), downloads: fc.integer({ min: 1, max: 50 }) }), { maxLength: 12 }),
  })
  .map(({ sets, keep, window, usage }) => {
    const packages: PackageDeps[] = [];
    let stamp = 20260101000000;
    sets.forEach((s, si) => {
      const layers: PackageDeps[][] = [];
      s.parents.forEach((p, li) => {
        const parent = li === 0 ? -1 : p % li;
        // builds[li]: for each build, which build of the parent layer it sits on.
        layers[li] = s.builds[li]!.map((onParent) => {
          const parentBuilds = parent < 0 ? [] : layers[parent]!;
          const b = build(`set${si}-layer${li}`, String(++stamp), parentBuilds.length ? parentBuilds[onParent % parentBuilds.length] : undefined);
          packages.push(b);
          return b;
        });
      });
    });
    return {
      packages,
      keep,
      window,
      usage: usage.map((u) => ({ nvr: nvr(packages[u.pick % packages.length]!), daysAgo: u.daysAgo, downloads: u.downloads })),
    };
  });

describe('retention by use, as a property', () => {
  it('never removes a build downloaded within the window nor anything it requires, and keeps nothing for no reason', () => {
    let keptByUse = 0; // builds count-based retention would have removed
    let keptForUsedParent = 0; // of those, kept only as what a used build requires
    fc.assert(
      fc.property(modelArb, (m) => {
        const usage = new Map<string, { downloads: number; lastDownloaded: string }>();
        for (const u of m.usage) {
          const last = new Date(NOW.getTime() - u.daysAgo * DAY).toISOString();
          const prev = usage.get(u.nvr);
          usage.set(u.nvr, { downloads: (prev?.downloads ?? 0) + u.downloads, lastDownloaded: prev && prev.lastDownloaded > last ? prev.lastDownloaded : last });
        }
        const d = planRetention(m.packages, m.keep, [], { usage, withinDays: m.window, now: NOW });
        const kept = new Set(d.keep);
        const byKey = new Map(m.packages.map((p) => [p.provides[0]!, p]));
        const cutoff = NOW.getTime() - m.window * DAY;
        const recentlyUsed = m.packages.filter((p) => {
          const u = usage.get(nvr(p));
          return u !== undefined && Date.parse(u.lastDownloaded) >= cutoff;
        });
        // Everything a build needs, by plain lookup of its exact Requires, independent of rpmdeps.
        const closure = (roots: PackageDeps[]) => {
          const out = new Set<PackageDeps>();
          for (const todo = [...roots]; todo.length > 0; ) {
            const p = todo.pop()!;
            if (out.has(p)) continue;
            out.add(p);
            for (const r of p.requires) todo.push(byKey.get(r)!);
          }
          return out;
        };
        // (1) a build used within the window and all it requires, transitively, are kept.
        for (const p of closure(recentlyUsed)) expect(kept.has(p), `${nvr(p)} is used within ${m.window} days or needed by one that is`).toBe(true);
        // (2) whatever is kept has what it requires.
        for (const p of d.keep) for (const r of p.requires) expect(kept.has(byKey.get(r)!), `${nvr(p)} needs ${r}`).toBe(true);
        // (3) nothing is kept for no reason: only the newest `keep` of each top-level name, the
        // recently used, and what those require.
        const required = new Set(m.packages.flatMap((p) => p.requires.map((r) => byKey.get(r)!.name)));
        const newest = [...new Set(m.packages.map((p) => p.name))]
          .filter((n) => !required.has(n))
          .flatMap((n) => m.packages.filter((p) => p.name === n).sort((a, b) => Number(b.release) - Number(a.release)).slice(0, m.keep));
        const justified = closure([...newest, ...recentlyUsed]);
        expect(d.keep.filter((p) => !justified.has(p)).map(nvr), 'kept for no reason').toEqual([]);
        expect(d.keep.length + d.remove.length).toBe(m.packages.length);
        // (4) the reasons say so: every recently used build carries a used rule naming its last
        // download and the window; no other build does; a removed build has no rule.
        for (const p of m.packages) {
          const rules = d.rules.get(p) ?? [];
          const usedRule = rules.find((r) => r.rule === 'used');
          if (recentlyUsed.includes(p)) {
            const u = usage.get(nvr(p))!;
            expect(usedRule?.reason).toContain(`last ${u.lastDownloaded}`);
            expect(usedRule?.reason).toMatch(new RegExp(`^downloaded ${u.downloads} times?, last .* \\((today|[0-9]+ days? ago), within ${m.window}\\)$`));
          } else {
            expect(usedRule).toBeUndefined();
          }
          expect(rules.length > 0).toBe(kept.has(p));
        }
        const byCount = new Set(planRetention(m.packages, m.keep).keep);
        const extra = d.keep.filter((p) => !byCount.has(p));
        keptByUse += extra.length;
        keptForUsedParent += extra.filter((p) => d.rules.get(p)![0]!.rule === 'required').length;
      }),
      { numRuns: 400 },
    );
    // The generator must make the cases that matter, or the properties above prove little.
    expect(keptByUse).toBeGreaterThan(200);
    expect(keptForUsedParent).toBeGreaterThan(50);
  });
});
