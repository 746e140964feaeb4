// The status page's view model: every string and number the template prints, computed here from
// the snapshot's index, its build facts, the run history and (when known) download counts. Pure:
// no file system, no clock. The template has no logic beyond #each/#if over what this returns, and
// the SVG drawings' coordinates are numbers computed here (style.md, habit 8).
import type { BuildFacts } from '../repository/builds.js';
import type { RunRecord } from '../records/run.js';
import type { PackageEntry, SnapshotRecord } from '../repository/snapshot.js';

/** Downloads of one build, as usage.ts records them (structurally: the page needs only these). */
export interface UsageFacts {
  downloads: number;
  lastDownloaded: string;
}

export interface StatusInput {
  snapshot: Pick<SnapshotRecord, 'stamp' | 'created' | 'previous' | 'signedBy' | 'packages'>;
  /** Build facts by pool file name. */
  builds: Record<string, BuildFacts>;
  history: RunRecord[];
  /** By package NVR; absent or empty: no download data, the column is left out. */
  usage?: Map<string, UsageFacts>;
  /** Paths relative to the repository root; `key` only when the repository is signed. */
  links: { repoFile: string; key?: string };
}

export interface ChainStep {
  layer: string;
  vr: string;
  nvr: string;
  /** Anchor of that build on the page. */
  href: string;
}

export interface DiffView {
  summary: string;
  changed: boolean;
  added: { name: string; version: string }[];
  removed: { name: string; version: string }[];
  upgraded: { name: string; from: string; to: string }[];
  downgraded: { name: string; from: string; to: string }[];
  unchanged: number;
  /** Empty when the build was not flagged. */
  flagged: string;
}

export interface BuildView {
  id: string;
  nvr: string;
  name: string;
  vr: string;
  href: string;
  file: string;
  summary: string;
  date: string;
  newest: boolean;
  flat: boolean;
  imageFile: string;
  imageBytes: number | null;
  imageSize: string;
  rpmBytes: number;
  rpmSize: string;
  chain: ChainStep[];
  chainNote: string;
  diff: DiffView | null;
  lastDownloaded: string;
  downloads: number | null;
}

export interface LayerView {
  name: string;
  flat: boolean;
  builds: BuildView[];
}

export interface GraphNode {
  layer: string;
  vr: string;
  note: string;
  x: number;
  y: number;
  w: number;
  h: number;
  tx: number;
  ty1: number;
  ty2: number;
  ty3: number;
}

export interface GraphEdge {
  x1: number;
  y1: number;
  xm: number;
  x2: number;
  y2: number;
}

export interface SetView {
  name: string;
  builds: number;
  layers: LayerView[];
  graph: { width: number; height: number; nodes: GraphNode[]; edges: GraphEdge[] };
}

export interface BarSegment {
  cls: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface RunBar {
  title: string;
  ok: boolean;
  segments: BarSegment[];
  /** The marker under the bar: green for passed, red for failed. */
  mx: number;
  my: number;
  mw: number;
  mh: number;
}

export interface RunRow {
  when: string;
  set: string;
  kind: string;
  ok: boolean;
  result: string;
  stages: string;
  total: string;
  detail: string;
  snapshot: string;
  /** Rebuild checks of the run (nightly --reproduce): one line, and whether every one reproduced. */
  reproduced: string;
  reproducedOk: boolean;
}

export interface StatusView {
  stamp: string;
  created: string;
  previous: string;
  signed: boolean;
  signedBy: string;
  links: { repoFile: string; key: string; hasKey: boolean };
  packages: number;
  totalSize: string;
  usageKnown: boolean;
  sets: SetView[];
  history: {
    runs: RunRow[];
    chart: { width: number; height: number; axisX: number; axisTop: number; axisBottom: number; maxLabel: string; labelY: number; bars: RunBar[]; stages: { name: string; cls: string; x: number; y: number; tx: number; ty: number }[] };
    empty: boolean;
  };
}

/** Graph geometry, in SVG user units. */
export const GRAPH = { nodeW: 190, nodeH: 54, colGap: 36, rowGap: 12, pad: 6 } as const;
/** Chart geometry: one bar per run, stacked by stage. */
export const CHART = { barW: 10, gap: 4, height: 90, left: 44, top: 8, marker: 5, legend: 22 } as const;
export const STAGES = ['upstream', 'plan', 'build', 'package', 'boot', 'reproduce', 'publish'] as const;

const round = (n: number): number => Math.round(n * 100) / 100;

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/** "2026-11-29 22:08 UTC" from an ISO time; the input as it is when it does not parse. */
export function utcMinute(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const nvrOf = (p: PackageEntry): string => `${p.name}-${p.version}-${p.release}`;
const vrOf = (p: PackageEntry): string => `${p.version}-${p.release}`;
/** An anchor name from an NVR: letters, digits, '.', '-', '_' only. */
export const anchor = (nvr: string): string => `b-${nvr.replace(/[^A-Za-z0-9._-]/g, '_')}`;

export interface Identity {
  set: string;
  layer: string;
  flat: boolean;
}

/** A package's set and layer from its `ost-images-layer(set/layer)` or `ost-images-flat(...)` Provides. */
export function identify(p: Pick<PackageEntry, 'name' | 'provides'>): Identity {
  for (const prov of p.provides) {
    const m = /^ost-images-(layer|flat)\(([^/)]+)\/([^)]+)\)/.exec(prov);
    if (m) return { set: m[2]!, layer: m[1] === 'flat' ? `${m[3]}-flat` : m[3]!, flat: m[1] === 'flat' };
  }
  return { set: '(other packages)', layer: p.name, flat: false };
}

/** The package a build requires as its parent (`<name> = <version>-<release>`), if served. */
function parentOf(p: PackageEntry, byNvr: Map<string, PackageEntry>): PackageEntry | undefined {
  for (const r of p.requires) {
    const m = /^(\S+) = (\S+)$/.exec(r);
    if (!m) continue;
    const found = byNvr.get(`${m[1]}-${m[2]}`);
    if (found) return found;
  }
  return undefined;
}

function diffView(d: BuildFacts['diff']): DiffView | null {
  if (!d) return null;
  const parts = [
    d.added.length && `${d.added.length} added`,
    d.upgraded.length && `${d.upgraded.length} upgraded`,
    d.downgraded.length && `${d.downgraded.length} downgraded`,
    d.removed.length && `${d.removed.length} removed`,
  ].filter(Boolean);
  const changed = parts.length > 0;
  return {
    summary: `${changed ? parts.join(', ') : 'no package changes'}; ${d.unchanged} unchanged`,
    changed,
    added: d.added,
    removed: d.removed,
    upgraded: d.upgraded,
    downgraded: d.downgraded,
    unchanged: d.unchanged,
    flagged: d.flagged ?? '',
  };
}

/**
 * Layers of a set in drawing order: depth-first from the roots, children by name, so a parent
 * always comes before its children. `parent` maps a layer to its parent layer.
 */
export function layerOrder(layers: string[], parent: Map<string, string | undefined>): { layer: string; depth: number }[] {
  const children = new Map<string | undefined, string[]>();
  for (const l of layers) {
    const p = parent.get(l);
    const key = p !== undefined && layers.includes(p) ? p : undefined;
    children.set(key, [...(children.get(key) ?? []), l]);
  }
  const out: { layer: string; depth: number }[] = [];
  const seen = new Set<string>();
  const visit = (l: string, depth: number): void => {
    if (seen.has(l)) return;
    seen.add(l);
    out.push({ layer: l, depth });
    for (const c of (children.get(l) ?? []).sort()) visit(c, depth + 1);
  };
  for (const r of (children.get(undefined) ?? []).sort()) visit(r, 0);
  // A cycle (no root reaches it) cannot come from real packages; still list every layer.
  for (const l of [...layers].sort()) visit(l, 0);
  return out;
}

export function layerGraph(order: { layer: string; depth: number }[], parent: Map<string, string | undefined>, label: Map<string, { vr: string; note: string }>): SetView['graph'] {
  const { nodeW, nodeH, colGap, rowGap, pad } = GRAPH;
  const nodes: GraphNode[] = order.map(({ layer, depth }, row) => {
    const x = pad + depth * (nodeW + colGap);
    const y = pad + row * (nodeH + rowGap);
    const l = label.get(layer) ?? { vr: '', note: '' };
    return { layer, vr: l.vr, note: l.note, x, y, w: nodeW, h: nodeH, tx: x + 8, ty1: y + 17, ty2: y + 32, ty3: y + 47 };
  });
  const at = new Map(nodes.map((n) => [n.layer, n]));
  const edges: GraphEdge[] = [];
  for (const n of nodes) {
    const p = parent.get(n.layer);
    const pn = p === undefined ? undefined : at.get(p);
    if (!pn) continue;
    const x1 = pn.x + pn.w;
    edges.push({ x1, y1: pn.y + nodeH / 2, xm: x1 + colGap / 2, x2: n.x, y2: n.y + nodeH / 2 });
  }
  const depth = Math.max(0, ...order.map((o) => o.depth));
  return {
    width: pad * 2 + (depth + 1) * nodeW + depth * colGap,
    height: order.length === 0 ? 0 : pad * 2 + order.length * nodeH + (order.length - 1) * rowGap,
    nodes,
    edges,
  };
}

const stageClass = (name: string): string => ((STAGES as readonly string[]).includes(name) ? `st-${name}` : 'st-other');

export function runChart(runs: RunRecord[]): StatusView['history']['chart'] {
  const { barW, gap, height, left, top, marker, legend } = CHART;
  const totals = runs.map((r) => r.stages.reduce((s, st) => s + Math.max(0, st.seconds), 0));
  const max = Math.max(0, ...totals);
  const scale = max > 0 ? height / max : 0;
  const bottom = top + height;
  const bars: RunBar[] = runs.map((r, i) => {
    const x = left + gap + i * (barW + gap);
    let acc = 0;
    const segments: BarSegment[] = [];
    for (const st of r.stages) {
      const h = Math.max(0, st.seconds) * scale;
      acc += h;
      if (h <= 0) continue;
      segments.push({ cls: stageClass(st.name), x, y: round(bottom - acc), w: barW, h: round(h) });
    }
    const stages = r.stages.map((s) => `${s.name} ${s.seconds.toFixed(1)} s`).join(', ');
    return {
      title: `${utcMinute(r.finished)} ${r.set} ${r.kind}: ${r.ok ? 'passed' : `FAILED${r.failedStage ? ` at ${r.failedStage}` : ''}`}${stages ? ` (${stages})` : ''}`,
      ok: r.ok,
      segments,
      mx: x,
      my: bottom + 3,
      mw: barW,
      mh: marker,
    };
  });
  const width = left + gap + Math.max(runs.length, 1) * (barW + gap) + 4;
  // The legend: one swatch per stage, in a row under the markers.
  const ly = bottom + 3 + marker + 8;
  const stages = STAGES.map((name, i) => ({ name, cls: stageClass(name), x: left + i * 78, y: ly, tx: left + i * 78 + 14, ty: ly + 9 }));
  return {
    width: Math.max(width, left + STAGES.length * 78),
    height: ly + legend - 8,
    axisX: left,
    axisTop: top,
    axisBottom: bottom,
    maxLabel: `${max >= 10 ? max.toFixed(0) : max.toFixed(1)} s`,
    labelY: top + 10,
    bars,
    stages,
  };
}

function runRow(r: RunRecord): RunRow {
  const total = r.stages.reduce((s, st) => s + st.seconds, 0);
  const result = r.ok ? 'passed' : r.kind === 'promote' ? 'refused' : `FAILED${r.failedStage ? ` at ${r.failedStage}` : ''}`;
  const gates = r.gates?.map((g) => `${g.layer}: ${g.state}`).join(', ');
  const detail = [r.run && `run ${r.run}`, gates, r.added !== undefined && `${r.added} package(s) added`, r.error].filter(Boolean).join('; ');
  return {
    when: utcMinute(r.finished),
    set: r.set,
    kind: r.kind,
    ok: r.ok,
    result,
    stages: r.stages.map((s) => `${s.name} ${s.seconds.toFixed(1)} s`).join(', '),
    total: `${total.toFixed(1)} s`,
    detail,
    snapshot: r.snapshot ?? '',
    reproduced: (r.reproduced ?? []).map((x) => `${x.layer}: ${x.status === 'identical' ? 'identical' : x.status === 'different' ? `DIFFERENT (${x.differing} path${x.differing === 1 ? '' : 's'})` : 'not checked'}`).join(', '),
    reproducedOk: (r.reproduced ?? []).every((x) => x.status === 'identical'),
  };
}

export function statusView(input: StatusInput): StatusView {
  const { snapshot, builds, history, usage } = input;
  const byNvr = new Map(snapshot.packages.map((p) => [nvrOf(p), p]));
  const ids = new Map(snapshot.packages.map((p) => [p, identify(p)]));
  const usageKnown = !!usage && usage.size > 0;

  const chainOf = (p: PackageEntry): ChainStep[] => {
    const steps: ChainStep[] = [];
    const seen = new Set<PackageEntry>();
    for (let q: PackageEntry | undefined = p; q && !seen.has(q); q = parentOf(q, byNvr)) {
      seen.add(q);
      steps.unshift({ layer: ids.get(q)!.layer, vr: vrOf(q), nvr: nvrOf(q), href: `#${anchor(nvrOf(q))}` });
    }
    return steps;
  };

  const setNames = [...new Set([...ids.values()].map((i) => i.set))].sort();
  const sets: SetView[] = setNames.map((set) => {
    const pkgs = snapshot.packages.filter((p) => ids.get(p)!.set === set);
    const layerNames = [...new Set(pkgs.map((p) => ids.get(p)!.layer))];
    const plain = layerNames.filter((l) => !pkgs.some((p) => ids.get(p)!.layer === l && ids.get(p)!.flat));
    const newestOf = (layer: string): PackageEntry =>
      pkgs.filter((p) => ids.get(p)!.layer === layer).sort((a, b) => (a.release < b.release ? 1 : a.release > b.release ? -1 : 0))[0]!;
    const parentLayer = new Map<string, string | undefined>();
    for (const l of plain) {
      const par = parentOf(newestOf(l), byNvr);
      parentLayer.set(l, par ? ids.get(par)!.layer : undefined);
    }
    const order = layerOrder(plain, parentLayer);
    const flats = new Set(layerNames.filter((l) => !plain.includes(l)));
    const label = new Map(
      plain.map((l) => {
        const flat = flats.has(`${l}-flat`);
        const n = pkgs.filter((p) => ids.get(p)!.layer === l).length;
        return [l, { vr: `newest ${vrOf(newestOf(l))}`, note: `${n} build${n === 1 ? '' : 's'}${flat ? ' · also flattened' : ''}` }];
      }),
    );
    const rows = order.flatMap(({ layer }) => (flats.has(`${layer}-flat`) ? [layer, `${layer}-flat`] : [layer]));
    // A flat variant whose layer is not served (its chain was pruned) still gets its row.
    for (const f of [...flats].sort()) if (!rows.includes(f)) rows.push(f);
    const layers: LayerView[] = rows.map((layer) => {
      const lp = pkgs.filter((p) => ids.get(p)!.layer === layer).sort((a, b) => (a.release < b.release ? 1 : a.release > b.release ? -1 : 0));
      const flat = flats.has(layer);
      return {
        name: layer,
        flat,
        builds: lp.map((p, i): BuildView => {
          const f = builds[p.file];
          const u = usage?.get(nvrOf(p));
          const chain = flat ? [{ layer, vr: vrOf(p), nvr: nvrOf(p), href: `#${anchor(nvrOf(p))}` }] : chainOf(p);
          return {
            id: anchor(nvrOf(p)),
            nvr: nvrOf(p),
            name: p.name,
            vr: vrOf(p),
            href: `packages/${encodeURIComponent(p.file)}`,
            file: p.file,
            summary: f?.summary ?? '',
            date: f ? utcMinute(f.builtAt) : '',
            newest: i === 0,
            flat,
            imageFile: f?.image?.file ?? '',
            imageBytes: f?.image?.bytes ?? null,
            imageSize: f?.image ? humanBytes(f.image.bytes) : 'unknown',
            rpmBytes: p.size,
            rpmSize: humanBytes(p.size),
            chain,
            chainNote: flat ? `flattened: the whole chain of ${layer.slice(0, -'-flat'.length)} in one standalone image` : chain.length === 1 ? 'a base: no parent' : '',
            diff: diffView(f?.diff),
            lastDownloaded: u ? utcMinute(u.lastDownloaded) : usageKnown ? 'never seen' : '',
            downloads: u ? u.downloads : usageKnown ? 0 : null,
          };
        }),
      };
    });
    return { name: set, builds: pkgs.length, layers, graph: layerGraph(order, parentLayer, label) };
  });

  const runs = history.slice(-60);
  return {
    stamp: snapshot.stamp,
    created: utcMinute(snapshot.created),
    previous: snapshot.previous ?? '',
    signed: !!snapshot.signedBy,
    signedBy: snapshot.signedBy ?? '',
    links: { repoFile: input.links.repoFile, key: input.links.key ?? '', hasKey: !!input.links.key },
    packages: snapshot.packages.length,
    totalSize: humanBytes(snapshot.packages.reduce((s, p) => s + p.size, 0)),
    usageKnown,
    sets,
    history: { runs: runs.map(runRow).reverse(), chart: runChart(runs), empty: runs.length === 0 },
  };
}
