// Decides what a build does before anything runs. Pure: `build` executes exactly the plan this
// returns, and `plan` / `build --dry-run` print it.
import { UsageError } from '../core/errors.js';
import type { LayerSet } from '../definitions/types.js';
import type { BuildRecord } from '../records/build.js';
import type { RemoteRef } from '../records/remote.js';
import type { LayerManifest } from '../records/build.js';
import { computeKeys, manifestDiff } from './keys.js';
import type { UpstreamView } from './upstream.js';

export type Action = 'build' | 'reuse' | 'fetch';

export interface PlanEntry {
  layer: string;
  parent?: string;
  /** The layer's input key (see keys.ts). */
  key: string;
  action: Action;
  reason: string;
  /** For a build: what differs from the inputs of the current build. */
  changes: string[];
  manifest: LayerManifest;
  /** For reuse: the existing build. */
  existing?: BuildRecord;
  /** For fetch: the published package with this layer's key. */
  remote?: RemoteRef;
}

export interface BuildPlan {
  set: string;
  entries: PlanEntry[];
}

/** The layer and its ancestors, base first. */
export function chainOf(ls: LayerSet, layer: string): string[] {
  const chain: string[] = [];
  for (let cur: string | undefined = layer; cur !== undefined; cur = ls.layers.get(cur)?.parent) chain.unshift(cur);
  return chain;
}

/** Layers whose parent is `layer`, recursively (not including it). */
export function descendantsOf(ls: LayerSet, layer: string): string[] {
  return ls.order.filter((l) => l !== layer && chainOf(ls, l).includes(layer));
}

/** Layers no other layer is built on: what a consumer installs and test-boot checks. */
export function topLayers(ls: LayerSet): string[] {
  const parents = new Set([...ls.layers.values()].map((l) => l.parent));
  return ls.order.filter((l) => !parents.has(l));
}

export function requireLayer(ls: LayerSet, layer: string): void {
  if (!ls.layers.has(layer)) {
    throw new UsageError(`set '${ls.set.name}' has no layer '${layer}' (layers: ${ls.order.join(', ')})`);
  }
}

export interface PlanOptions {
  /** Rebuild the requested layers even when their inputs did not change. */
  force?: boolean;
  /** Upstream digests and dates by URL (see upstream.ts). */
  upstream?: UpstreamView;
  /** Layer keys published in cache repositories. */
  remote?: Map<string, RemoteRef>;
  /** Identity of the set's root public key (builder/root-key.ts); undefined: none yet. */
  rootKey?: string;
}

/** The release of the build a layer will sit on once the plan ran, if it is known now. */
function plannedRelease(e: PlanEntry | undefined): string | undefined {
  return e?.action === 'reuse' ? e.existing?.release : e?.action === 'fetch' ? e.remote?.release : undefined;
}

/**
 * For every requested layer and its ancestors: reuse the current build when its input key is the
 * layer's key now (and it was made on its parent's current build), build otherwise, saying why.
 * With no request, every layer of the set is considered. Nothing here touches the disk.
 */
export function planBuild(ls: LayerSet, requested: string[], current: Map<string, BuildRecord | undefined>, opts: PlanOptions = {}): BuildPlan {
  requested.forEach((l) => requireLayer(ls, l));
  const targets = requested.length > 0 ? requested : ls.order;
  const needed = new Set(targets.flatMap((t) => chainOf(ls, t)));
  const keys = computeKeys(ls, opts.upstream, opts.rootKey);
  const entries: PlanEntry[] = [];
  const byLayer = new Map<string, PlanEntry>();
  for (const layer of ls.order) {
    if (!needed.has(layer)) continue;
    const parent = ls.layers.get(layer)!.parent;
    const { key, manifest } = keys.get(layer)!;
    const parentEntry = parent !== undefined ? byLayer.get(parent) : undefined;
    // Only the current (newest) build is reused: an older build of the same inputs would make the
    // store's current build older than what the repository serves for the same name.
    const existing = current.get(layer);
    const changes = existing?.manifest ? manifestDiff(existing.manifest, manifest) : [];
    let action: Action = 'build';
    let reason: string;
    if (opts.force && targets.includes(layer)) {
      reason = 'forced';
    } else if (parentEntry?.action === 'build') {
      reason = `parent '${parent}' is being rebuilt`;
    } else if (parentEntry?.action === 'fetch' && existing?.parent?.release !== parentEntry.remote?.release) {
      reason = `parent '${parent}' is taken from the repository`;
    } else if (!existing) {
      reason = 'no build of this layer yet';
    } else if (existing.key !== key) {
      reason = existing.manifest ? 'inputs changed' : 'the current build records no inputs';
    } else if (parentEntry?.existing && existing.parent?.release !== parentEntry.existing.release) {
      reason = `made on another build of '${parent}' than its current one`;
    } else {
      action = 'reuse';
      reason = `in local store: ${existing.version}-${existing.release}`;
    }
    // A published build of the same inputs replaces a local build, provided it was made on the
    // very parent build this chain will have: an overlay is only valid on the bytes it was made on.
    const remote = opts.remote?.get(key);
    let fetched: RemoteRef | undefined;
    if (action === 'build' && reason !== 'forced' && remote && (parent === undefined || remote.parentRelease === plannedRelease(parentEntry))) {
      action = 'fetch';
      reason = `in repository: ${remote.nvr}`;
      fetched = remote;
    }
    const entry: PlanEntry = {
      layer, parent, key, action, reason, changes: action === 'build' ? changes : [], manifest,
      existing: action === 'reuse' ? existing : undefined,
      remote: fetched,
    };
    byLayer.set(layer, entry);
    entries.push(entry);
  }
  return { set: ls.set.name, entries };
}
