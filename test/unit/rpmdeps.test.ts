import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  ProvidesIndex, compareEvr, parseDep, rpmvercmp, satisfies, unresolvedRequires, type PackageDeps,
} from '../../src/core/rpmdeps.js';

// [a, b, expected sign of rpmvercmp(a, b)]. Every expectation was checked against rpm 4.18 with
// `rpm --eval '%{lua: print(rpm.vercmp(a, b))}'`, and the test below re-checks them all on each run.
const VERSIONS: [string, string, number][] = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0.1', '2.0', 1],
  ['1.0', '1.0.0', -1],
  ['1.0a', '1.0', 1], // an extra segment of any kind is newer...
  ['1.0~rc1', '1.0', -1], // ...except after "~", the pre-release marker
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~', '1.0', -1],
  ['~~', '~', -1],
  ['1.0^', '1.0', 1], // "^" (post-release snapshot) is newer than the base version...
  ['1.0', '1.0^git1', -1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0^git1', '1.0.1', -1], // ...but older than any further version segment
  ['1.0^git1', '1.0~rc1', 1],
  ['1.0^git1~pre', '1.0^git1', -1],
  ['10', '9', 1], // numeric, not lexical
  ['1.010', '1.10', 0], // leading zeros are ignored
  ['001', '1', 0],
  ['1.010', '1.01', 1],
  ['a', 'b', -1],
  ['abc', 'abd', -1],
  ['A', 'a', -1], // letters compare by ASCII
  ['1', 'a', 1], // a digit segment is newer than a letter segment
  ['1.a', '1.1', -1],
  ['2.0a', '2.0.1', -1],
  ['1.0', '1_0', 0], // any run of separators is one separator
  ['1..0', '1.0', 0],
  ['1.0.', '1.0', 0],
  // Our release stamps: UTC time, and ".N" for a second build in the same second.
  ['20260101000000', '20260102000000', -1],
  ['20260101000000', '20260101000000.1', -1],
  ['20260101000000.1', '20260101000001', -1],
];

// [a, b, expected sign of compareEvr(a, b)], also checked against rpm.vercmp, which parses EVRs.
// Only pairs where both or neither side has a release: for a one-sided release rpm.vercmp (package
// ordering) calls the side without one older, while compareEvr follows dependency matching.
const EVRS: [string, string, number][] = [
  ['1:1.0', '2.0', 1],
  ['0:1.0', '1.0', 0],
  ['1:1.0-1', '1:1.0-1', 0],
  ['1.0-2', '1.0-1', 1],
  ['1.0-10', '1.0-9', 1],
  ['2.0-1', '1.0-9', 1], // version before release
  ['1.0-1~rc', '1.0-1', -1],
  ['12-20260101000000', '12-20260101000000.1', -1],
];

/** Runs every pair through rpm's own vercmp in one process; returns the signs. */
function rpmVercmp(pairs: [string, string][]): number[] {
  // JSON string literals are valid Lua string literals for the printable ASCII used here.
  const table = pairs.map(([a, b]) => `{${JSON.stringify(a)},${JSON.stringify(b)}}`).join(',');
  const lua = `local o = {} for i, p in ipairs({${table}}) do o[i] = tostring(rpm.vercmp(p[1], p[2])) end print(table.concat(o, ' '))`;
  return execFileSync('rpm', ['--eval', `%{lua:${lua}}`], { encoding: 'utf8' }).trim().split(' ').map(Number);
}

/** A small seeded PRNG (mulberry32), so the random pairs are the same on every run. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('rpmvercmp', () => {
  it.each(VERSIONS)('%s vs %s is %i, and the reverse is its negation', (a, b, want) => {
    expect(Math.sign(rpmvercmp(a, b))).toBe(want);
    expect(Math.sign(rpmvercmp(b, a))).toBe(-want || 0);
  });

  it('agrees with rpm itself on the table and on random versions', () => {
    // Random strings over digits (with zeros), letters, separators, "~" and "^": the corners.
    const rnd = prng(20260101);
    const word = () => Array.from({ length: 1 + rnd(7) }, () => '0019abZ._~^'[rnd(11)]).join('');
    const random: [string, string][] = Array.from({ length: 1500 }, () => [word(), word()]);
    const pairs: [string, string][] = [...VERSIONS.map(([a, b]) => [a, b] as [string, string]), ...random];
    const theirs = rpmVercmp(pairs);
    expect(theirs).toHaveLength(pairs.length);
    const disagree = pairs.filter(([a, b], i) => Math.sign(rpmvercmp(a, b)) !== theirs[i]);
    expect(disagree).toEqual([]);
    // And the hand-written expectations are rpm's.
    expect(theirs.slice(0, VERSIONS.length)).toEqual(VERSIONS.map(([, , want]) => want));
  });
});

describe('compareEvr', () => {
  it('compares epoch, then version, then release, as rpm does', () => {
    for (const [a, b, want] of EVRS) expect(Math.sign(compareEvr(a, b)), `${a} vs ${b}`).toBe(want);
    expect(rpmVercmp(EVRS.map(([a, b]) => [a, b]))).toEqual(EVRS.map(([, , want]) => want));
  });

  it('does not compare a release that one side lacks (so "= 12" matches any 12-*)', () => {
    expect(compareEvr('12-20260101000000', '12')).toBe(0);
    expect(compareEvr('12', '12-20260101000000')).toBe(0);
    expect(Math.sign(compareEvr('13', '12-99'))).toBe(1); // the version still counts
  });
});

describe('parseDep and satisfies', () => {
  it('parses names with and without a version range', () => {
    expect(parseDep('ost-images-demo-base = 12-20260101000000')).toEqual({ name: 'ost-images-demo-base', op: '=', evr: '12-20260101000000' });
    expect(parseDep('  rpmlib(PayloadIsZstd)  <=  5.4.18-1 ')).toEqual({ name: 'rpmlib(PayloadIsZstd)', op: '<=', evr: '5.4.18-1' });
    expect(parseDep('installonlypkg(vm)')).toEqual({ name: 'installonlypkg(vm)' });
  });

  // Expectations checked with python3-rpm: rpm.ds(provide).Compare(rpm.ds(require)).
  const provide = parseDep('foo = 12-5');
  it.each([
    ['foo = 12-5', true], ['foo = 12-6', false], ['foo = 12', true],
    ['foo < 12', false], ['foo > 12', false], ['foo <= 12', true],
    ['foo >= 12-4', true], ['foo > 12-4', true], ['foo < 12-4', false], ['foo <= 12-5', true],
    ['foo < 13', true], ['foo >= 13', false], ['foo', true], ['bar', false], ['bar = 12-5', false],
  ])('"foo = 12-5" satisfies "%s": %s', (req, want) => {
    expect(satisfies(provide, parseDep(req))).toBe(want);
  });

  it('an unversioned provide satisfies any range of its name', () => {
    expect(satisfies(parseDep('foo'), parseDep('foo >= 99'))).toBe(true);
    expect(satisfies(parseDep('foo'), parseDep('bar >= 1'))).toBe(false);
  });
});

const pkg = (name: string, release: string, requires: string[] = [], provides: string[] = []): PackageDeps => ({
  name, version: '12', release, requires, provides,
});

describe('ProvidesIndex and unresolvedRequires', () => {
  const base1 = pkg('base', '20260101000000', [], ['ost-images-layer(demo/base) = 12-20260101000000']);
  const base2 = pkg('base', '20260102000000', [], ['base = 12-20260102000000']); // lists its own name too
  const base3 = pkg('base', '20260101000000.1');
  const up = pkg('upgrade', '20260102000000', ['base = 12-20260102000000', 'rpmlib(CompressedFileNames) <= 3.0.4-1']);

  it('every package provides its own name at its own version, listed or not, each once, newest first', () => {
    const index = new ProvidesIndex([base1, up, base3, base2]);
    expect(index.providers('base')).toEqual([base2, base3, base1]);
    expect(index.providers('base = 12-20260101000000')).toEqual([base1]);
    expect(index.providers('base >= 12-20260101000000.1')).toEqual([base2, base3]);
    expect(index.providers('ost-images-layer(demo/base)')).toEqual([base1]);
    expect(index.providers('base = 12-20260103000000')).toEqual([]);
    expect(index.providers('nothing')).toEqual([]);
  });

  it('ignores rpmlib() requires and reports a missing exact parent build', () => {
    expect(unresolvedRequires([base1, base2, up])).toEqual([]);
    // The parent build was removed, although an older and a newer-looking one remain.
    const engine = pkg('engine', '20260103000000', ['upgrade = 12-20260101000000']);
    expect(unresolvedRequires([base1, base2, base3, up, engine])).toEqual([{ pkg: engine, require: 'upgrade = 12-20260101000000' }]);
    expect(unresolvedRequires([base1, up])).toEqual([{ pkg: up, require: 'base = 12-20260102000000' }]);
  });
});
