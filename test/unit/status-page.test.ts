// The status page's view model (pure) and its template: chain order, graph and chart numbers,
// escaping of data, usage, and the template's own rules (escaping on, no scripts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SPECS_DIR } from '../../src/core/paths.js';
import type { BuildFacts } from '../../src/repository/builds.js';
import { factsFrom } from '../../src/repository/builds.js';
import type { RunRecord } from '../../src/records/run.js';
import { withRun } from '../../src/repository/history.js';
import type { PackageEntry } from '../../src/repository/snapshot.js';
import { renderStatusPage, TEMPLATE_FILE } from '../../src/status/status-page.js';
import { CHART, GRAPH, humanBytes, identify, layerOrder, runChart, statusView, utcMinute, type StatusInput } from '../../src/status/status-view.js';
import { parsePayloadQuery } from '../../src/tools/rpm-payload.js';

const R = (n: number) => `2026010100${String(n).padStart(4, '0')}`;
function pkg(set: string, layer: string, release: string, parent?: PackageEntry, flat = false): PackageEntry {
  const name = `ost-images-${set}-${layer}${flat ? '-flat' : ''}`;
  return {
    file: `${name}-12-${release}.noarch.rpm`,
    name,
    version: '12',
    release,
    provides: [`ost-images-${flat ? 'flat' : 'layer'}(${set}/${layer}) = 12-${release}`, 'installonlypkg(vm)'],
    requires: parent ? [`${parent.name} = 12-${parent.release}`] : [],
    size: 1000 + Number(release.slice(-4)),
  };
}

const base = pkg('demo', 'base', R(1));
const up = pkg('demo', 'upgrade', R(2), base);
const engine = pkg('demo', 'engine-installed', R(3), up);
const host = pkg('demo', 'host-installed', R(4), up);
const engine2 = pkg('demo', 'engine-installed', R(5), up);
const engineFlat = pkg('demo', 'engine-installed', R(5), undefined, true);
const other = pkg('zeta', 'base', R(6));

const facts = (summary: string, bytes: number, diff?: BuildFacts['diff']): BuildFacts => ({ summary, builtAt: '2026-01-01T00:00:00.000Z', image: { file: 'x.qcow2', bytes }, diff });

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    snapshot: { stamp: '20260102030405', created: '2026-01-02T03:04:05.000Z', previous: '20260101000000', packages: [engine2, host, base, up, engine, engineFlat, other] },
    builds: {
      [base.file]: facts('Debian 12 base layer image: <script>alert(1)</script> & "co"', 5 * 1024 ** 2, { added: [{ name: 'busybox', version: '1:1.35' }], removed: [], upgraded: [], downgraded: [], unchanged: 0 }),
      [engine2.file]: facts('engine', 3 * 1024 ** 2, { added: [], removed: [{ name: 'old<pkg>', version: '1' }], upgraded: [{ name: 'postgresql', from: '15.1', to: '15.2' }], downgraded: [], unchanged: 7, flagged: '' }),
    },
    history: [],
    links: { repoFile: 'ost-images.repo' },
    ...over,
  };
}

describe('the status view model', () => {
  it('identifies set and layer from the Provides, flat variants included', () => {
    expect(identify(base)).toEqual({ set: 'demo', layer: 'base', flat: false });
    expect(identify(engineFlat)).toEqual({ set: 'demo', layer: 'engine-installed-flat', flat: true });
    expect(identify({ name: 'foo', provides: ['foo = 1'] })).toEqual({ set: '(other packages)', layer: 'foo', flat: false });
  });

  it('lists sets by name, layers parent first with flat variants after their layer, builds newest first', () => {
    const v = statusView(input());
    expect(v.sets.map((s) => s.name)).toEqual(['demo', 'zeta']);
    const demo = v.sets[0]!;
    expect(demo.layers.map((l) => l.name)).toEqual(['base', 'upgrade', 'engine-installed', 'engine-installed-flat', 'host-installed']);
    expect(demo.layers[2]!.builds.map((b) => [b.vr, b.newest])).toEqual([[`12-${R(5)}`, true], [`12-${R(3)}`, false]]);
    expect(demo.builds).toBe(6);
  });

  it.each([
    { build: engine2, chain: ['base', 'upgrade', 'engine-installed'], vrs: [R(1), R(2), R(5)] },
    { build: host, chain: ['base', 'upgrade', 'host-installed'], vrs: [R(1), R(2), R(4)] },
    { build: base, chain: ['base'], vrs: [R(1)] },
    { build: engineFlat, chain: ['engine-installed-flat'], vrs: [R(5)] },
  ])('draws the chain of $build.file base first', ({ build, chain, vrs }) => {
    const b = statusView(input()).sets[0]!.layers.flatMap((l) => l.builds).find((x) => x.file === build.file)!;
    expect(b.chain.map((c) => c.layer)).toEqual(chain);
    expect(b.chain.map((c) => c.vr)).toEqual(vrs.map((r) => `12-${r}`));
    expect(b.chain.at(-1)!.href).toBe(`#${b.id}`);
  });

  it('notes flattened variants and bases', () => {
    const builds = statusView(input()).sets[0]!.layers.flatMap((l) => l.builds);
    expect(builds.find((b) => b.file === engineFlat.file)!.chainNote).toBe('flattened: the whole chain of engine-installed in one standalone image');
    expect(builds.find((b) => b.file === base.file)!.chainNote).toBe('a base: no parent');
  });

  it('sizes: the image from the build facts, the package from the snapshot index; unknown without facts', () => {
    const builds = statusView(input()).sets[0]!.layers.flatMap((l) => l.builds);
    const b = builds.find((x) => x.file === base.file)!;
    expect([b.imageBytes, b.imageSize, b.rpmBytes, b.rpmSize]).toEqual([5 * 1024 ** 2, '5.0 MiB', base.size, humanBytes(base.size)]);
    const h = builds.find((x) => x.file === host.file)!;
    expect([h.imageBytes, h.imageSize, h.diff]).toEqual([null, 'unknown', null]);
  });

  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [15 * 1024 ** 2, '15 MiB'],
    [2.5 * 1024 ** 3, '2.5 GiB'],
  ])('humanBytes(%d) = %s', (n, s) => expect(humanBytes(n)).toBe(s));

  it('summarizes package changes against the parent', () => {
    const builds = statusView(input()).sets[0]!.layers.flatMap((l) => l.builds);
    expect(builds.find((b) => b.file === engine2.file)!.diff!.summary).toBe('1 upgraded, 1 removed; 7 unchanged');
    expect(builds.find((b) => b.file === base.file)!.diff!.summary).toBe('1 added; 0 unchanged');
  });

  it('graph: a node per plain layer, columns by depth, rows in order, edges from parent to child', () => {
    const g = statusView(input()).sets[0]!.graph;
    const { nodeW, nodeH, colGap, rowGap, pad } = GRAPH;
    expect(g.nodes.map((n) => [n.layer, n.x, n.y])).toEqual([
      ['base', pad, pad],
      ['upgrade', pad + nodeW + colGap, pad + nodeH + rowGap],
      ['engine-installed', pad + 2 * (nodeW + colGap), pad + 2 * (nodeH + rowGap)],
      ['host-installed', pad + 2 * (nodeW + colGap), pad + 3 * (nodeH + rowGap)],
    ]);
    expect(g.nodes[2]!.note).toBe('2 builds · also flattened');
    expect(g.edges).toEqual([
      { x1: pad + nodeW, y1: pad + nodeH / 2, xm: pad + nodeW + colGap / 2, x2: pad + nodeW + colGap, y2: pad + nodeH + rowGap + nodeH / 2 },
      { x1: pad + 2 * nodeW + colGap, y1: pad + nodeH + rowGap + nodeH / 2, xm: pad + 2 * nodeW + colGap + colGap / 2, x2: pad + 2 * (nodeW + colGap), y2: pad + 2 * (nodeH + rowGap) + nodeH / 2 },
      { x1: pad + 2 * nodeW + colGap, y1: pad + nodeH + rowGap + nodeH / 2, xm: pad + 2 * nodeW + colGap + colGap / 2, x2: pad + 2 * (nodeW + colGap), y2: pad + 3 * (nodeH + rowGap) + nodeH / 2 },
    ]);
    expect([g.width, g.height]).toEqual([pad * 2 + 3 * nodeW + 2 * colGap, pad * 2 + 4 * nodeH + 3 * rowGap]);
  });

  it('layerOrder: parents before children whatever the input order; a layer whose parent is not served is a root', () => {
    const parent = new Map<string, string | undefined>([['c', 'b'], ['b', 'a'], ['a', undefined], ['d', 'gone']]);
    expect(layerOrder(['c', 'd', 'b', 'a'], parent)).toEqual([
      { layer: 'a', depth: 0 },
      { layer: 'b', depth: 1 },
      { layer: 'c', depth: 2 },
      { layer: 'd', depth: 0 },
    ]);
  });

  const run = (ok: boolean, stages: [string, number][], extra: Partial<RunRecord> = {}): RunRecord => ({
    kind: 'nightly',
    set: 'demo',
    started: '2026-01-01T01:00:00Z',
    finished: '2026-01-01T02:00:00Z',
    ok,
    stages: stages.map(([name, seconds]) => ({ name, seconds })),
    ...extra,
  });

  it('chart: one bar per run, stages stacked bottom-up, scaled to the longest run', () => {
    const c = runChart([run(true, [['upstream', 10], ['build', 30]]), run(false, [['upstream', 20]], { failedStage: 'upstream' }), run(true, [])]);
    const { barW, gap, height, left, top } = CHART;
    const bottom = top + height;
    const scale = height / 40;
    expect(c.bars.map((b) => b.segments)).toEqual([
      [
        { cls: 'st-upstream', x: left + gap, y: bottom - 10 * scale, w: barW, h: 10 * scale },
        { cls: 'st-build', x: left + gap, y: bottom - 40 * scale, w: barW, h: 30 * scale },
      ],
      [{ cls: 'st-upstream', x: left + gap + barW + gap, y: bottom - 20 * scale, w: barW, h: 20 * scale }],
      [],
    ]);
    expect(c.bars.map((b) => b.ok)).toEqual([true, false, true]);
    expect(c.bars.map((b) => [b.mx, b.my])).toEqual([0, 1, 2].map((i) => [left + gap + i * (barW + gap), bottom + 3]));
    expect(c.bars[1]!.title).toBe('2026-01-01 02:00 UTC demo nightly: FAILED at upstream (upstream 20.0 s)');
    expect(c.maxLabel).toBe('40 s');
  });

  it('chart: no runs or zero times give finite numbers', () => {
    for (const runs of [[], [run(true, [['build', 0]])]]) {
      const c = runChart(runs);
      const nums = [c.width, c.height, ...c.bars.flatMap((b) => [b.mx, b.my, ...b.segments.flatMap((s) => [s.x, s.y, s.w, s.h])])];
      expect(nums.every(Number.isFinite)).toBe(true);
    }
  });

  it('history rows newest first; a refused promotion says so with its gates', () => {
    const v = statusView(
      input({
        history: [
          run(true, [['build', 1]], { snapshot: 'S1', added: 4 }),
          run(false, [], { kind: 'promote', failedStage: 'gate', run: 'r7', gates: [{ layer: 'app', state: 'failed' }], error: 'refused <b>' }),
        ],
      }),
    );
    expect(v.history.runs.map((r) => [r.kind, r.result, r.detail])).toEqual([
      ['promote', 'refused', 'run r7; app: failed; refused <b>'],
      ['nightly', 'passed', '4 package(s) added'],
    ]);
  });

  it('history keeps the last runs only', () => {
    let h = { schema: 1 as const, runs: [] as RunRecord[] };
    for (let i = 0; i < 70; i++) h = withRun(h, run(true, [['build', i]]));
    expect(h.runs.length).toBe(60);
    expect(h.runs[0]!.stages[0]!.seconds).toBe(10);
  });

  it('last downloaded: shown per build when usage is known, "never seen" for the others, left out without data', () => {
    const usage = new Map([[`${base.name}-12-${base.release}`, { downloads: 3, lastDownloaded: '2026-01-05T06:07:08Z' }]]);
    const builds = statusView(input({ usage })).sets[0]!.layers.flatMap((l) => l.builds);
    expect(builds.find((b) => b.file === base.file)!).toMatchObject({ lastDownloaded: '2026-01-05 06:07 UTC', downloads: 3 });
    expect(builds.find((b) => b.file === host.file)!).toMatchObject({ lastDownloaded: 'never seen', downloads: 0 });
    expect(statusView(input()).usageKnown).toBe(false);
    expect(statusView(input({ usage: new Map() })).usageKnown).toBe(false);
  });

  it('utcMinute', () => {
    expect(utcMinute('2026-11-29T22:08:11.123Z')).toBe('2026-11-29 22:08 UTC');
    expect(utcMinute('not a date')).toBe('not a date');
  });
});

describe('build facts', () => {
  it('parses the payload query and takes the image size and package changes', () => {
    const q = parsePayloadQuery('Debian 12 engine layer image: Engine & co\n1767225600\n4096 /usr/share/ost-images\n123456 /usr/share/ost-images/demo-engine-12-R.qcow2\n300 /usr/share/ost-images/demo-engine-12-R.build.json\n');
    expect(q.files).toEqual([
      { path: '/usr/share/ost-images', bytes: 4096 },
      { path: '/usr/share/ost-images/demo-engine-12-R.qcow2', bytes: 123456 },
      { path: '/usr/share/ost-images/demo-engine-12-R.build.json', bytes: 300 },
    ]);
    const f = factsFrom(q, undefined, { schema: 1, added: [{ name: 'a', version: '1' }], removed: [], upgraded: [], downgraded: [], unchanged: 2 });
    expect(f).toEqual({
      summary: 'Debian 12 engine layer image: Engine & co',
      builtAt: '2026-01-01T00:00:00.000Z',
      image: { file: 'demo-engine-12-R.qcow2', bytes: 123456 },
      diff: { added: [{ name: 'a', version: '1' }], removed: [], upgraded: [], downgraded: [], unchanged: 2 },
    });
    // A base's diff written before diffs had lists ("{}") is no diff.
    expect(factsFrom(q, undefined, {} as never).diff).toBeUndefined();
  });
});

describe('the status page template', () => {
  const template = readFileSync(path.join(SPECS_DIR, TEMPLATE_FILE), 'utf8');

  it('never prints unescaped (no triple braces) and carries no script', () => {
    expect(template).not.toContain('{{{');
    expect(template).not.toMatch(/<script/i);
    expect(template).not.toMatch(/\son[a-z]+=/i); // no inline event handlers either
    expect(template).not.toMatch(/(href|src)="(https?:)?\/\//); // no external assets
  });

  it('escapes data: a description with <script> and & is text', () => {
    const html = renderStatusPage(statusView(input({ history: [run2()] })));
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;');
    expect(html).toContain('old&lt;pkg&gt;');
    expect(html).toContain('refused &lt;b&gt;');
    expect(html).not.toMatch(/<script/i);
  });

  it('links the .repo file always, the key only when signed', () => {
    expect(renderStatusPage(statusView(input()))).not.toContain('RPM-GPG-KEY');
    const signed = renderStatusPage(statusView(input({ snapshot: { ...input().snapshot, signedBy: 'ABCD' }, links: { repoFile: 'ost-images.repo', key: 'RPM-GPG-KEY-ost-images' } })));
    expect(signed).toContain('href="RPM-GPG-KEY-ost-images"');
    expect(signed).toContain('href="ost-images.repo"');
  });

  function run2(): RunRecord {
    return { kind: 'promote', set: 'demo', started: '2026-01-01T00:00:00Z', finished: '2026-01-01T00:00:01Z', ok: false, stages: [], error: 'refused <b>' };
  }
});
