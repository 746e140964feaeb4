// Decides what a build does before anything runs. Pure: `build` executes exactly the plan this
// returns, and `plan` / `build --dry-run` print it.
import { UsageError } from '../errors.js';
import type { LayerSet } from '../definitions/types.js';
import type { BuildRecord } from '../store.js';

export type Action = 'build' | 'reuse';

export interface PlanEntry {
  layer: string;
  parent?: string;
  action: Action;
  reason: string;
  /** For reuse: the existing build. */
  existing?: BuildRecord;
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

/**
 * Requested layers are built; their ancestors are reused when a build exists and built otherwise.
 * With no request, every layer is built. A rebuilt ancestor forces its requested descendants to be
 * built on top of it, never the other way round.
 */
export function planBuild(ls: LayerSet, requested: string[], current: Map<string, BuildRecord | undefined>): BuildPlan {
  requested.forEach((l) => requireLayer(ls, l));
  const targets = requested.length > 0 ? requested : ls.order;
  const needed = new Set(targets.flatMap((t) => chainOf(ls, t)));
  const entries: PlanEntry[] = [];
  const building = new Set<string>();
  for (const layer of ls.order) {
    if (!needed.has(layer)) continue;
    const parent = ls.layers.get(layer)!.parent;
    const existing = current.get(layer);
    let action: Action;
    let reason: string;
    if (targets.includes(layer)) {
      action = 'build';
      reason = requested.length > 0 ? 'requested' : 'building the whole set';
    } else if (parent !== undefined && building.has(parent)) {
      action = 'build';
      reason = `parent '${parent}' is being rebuilt`;
    } else if (!existing) {
      action = 'build';
      reason = 'no build of this layer yet';
    } else {
      action = 'reuse';
      reason = `existing build ${existing.version}-${existing.release}`;
    }
    if (action === 'build') building.add(layer);
    entries.push({ layer, parent, action, reason, existing: action === 'reuse' ? existing : undefined });
  }
  return { set: ls.set.name, entries };
}
