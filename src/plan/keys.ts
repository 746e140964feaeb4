// Input keys. A layer's key is the sha256 of a canonical JSON manifest of everything that shapes
// its image: the parent's key, the distribution settings, the layer's own definition, the bytes of
// every file its steps use, and the toolchain's builder version. Keys chain like a Merkle tree, so
// computing them reads only definitions, never image bytes. Pure.
import { createHash } from 'node:crypto';
import type { LayerDef, LayerSet } from '../definitions/types.js';
import { layerEpoch } from './epoch.js';
import { NO_UPSTREAM, type UpstreamView } from './upstream.js';
import type { LayerManifest } from '../records/build.js';

/**
 * Bump when the toolchain changes what it writes into images (base assembly, chroot clean-up,
 * compaction): every key changes and every layer is rebuilt once.
 */
export const BUILDER_VERSION = 3; // 2: set-qualified file names (a child's backing name changed); 3: reproducible layers


/** JSON with object keys sorted at every level: the same data always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function keyOf(manifest: LayerManifest): string {
  return createHash('sha256').update(canonicalJson(manifest)).digest('hex');
}

function stepManifest(step: LayerDef['steps'][number]): unknown {
  switch (step.kind) {
    case 'install':
      return { install: step.packages };
    case 'upgrade':
      return { upgrade: true };
    case 'run':
      // The script's bytes matter, not where the checkout is.
      return { run: { file: step.script, sha256: step.sha256 } };
    case 'upload':
      return { upload: { from: step.from, sha256: step.sha256, to: step.to, mode: step.mode.toString(8) } };
    case 'install-local':
      return { installLocal: step.files.map((f) => ({ name: f.name, sha256: f.sha256 })) };
  }
}

/**
 * `rootKey` is the identity of the set's root public key; undefined while the set has none yet (a
 * plan before the first base build), which plans the base as changed.
 */
export function layerManifest(ls: LayerSet, layer: LayerDef, parentKey: string | undefined, upstream: UpstreamView = NO_UPSTREAM, rootKey?: string): LayerManifest {
  const d = ls.set.distro;
  const digests = upstream.digests;
  return {
    schema: 1,
    builder: BUILDER_VERSION,
    distro: { family: d.family, version: d.version, codename: d.codename, mirror: d.mirror, arch: d.arch },
    // Only a base layer's disk size is an input; overlays inherit theirs.
    imageSize: layer.base ? ls.set.image.sizeBytes : undefined,
    layer: layer.name,
    parent: layer.parent !== undefined ? { layer: layer.parent, key: parentKey! } : null,
    // A kickstart template counts by name and bytes, not by where the checkout is.
    base: layer.base ? (layer.base.method === 'kickstart' ? { ...layer.base, template: { file: layer.base.template.file, sha256: layer.base.template.sha256 } } : { ...layer.base }) : undefined,
    steps: layer.steps.map(stepManifest),
    upstream: layer.upstream.length > 0 ? Object.fromEntries(layer.upstream.map((u) => [u, digests[u] ?? 'unknown'])) : undefined,
    // The key is written into the base image (authorized_keys) and shipped with it.
    rootKey: layer.base ? (rootKey ?? 'unknown') : undefined,
    sourceDateEpoch: layerEpoch(ls, layer.name, upstream.dates),
  };
}

/** Every layer's manifest and key, parents first. */
export function computeKeys(ls: LayerSet, upstream: UpstreamView = NO_UPSTREAM, rootKey?: string): Map<string, { key: string; manifest: LayerManifest }> {
  const out = new Map<string, { key: string; manifest: LayerManifest }>();
  for (const name of ls.order) {
    const layer = ls.layers.get(name)!;
    const parentKey = layer.parent !== undefined ? out.get(layer.parent)!.key : undefined;
    const manifest = layerManifest(ls, layer, parentKey, upstream, rootKey);
    out.set(name, { key: keyOf(manifest), manifest });
  }
  return out;
}

function flatten(value: unknown, at: string, out: Map<string, string>): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(v, `${at}[${i}]`, out));
    if (value.length === 0) out.set(at, '[]');
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (v !== undefined) flatten(v, `${at}.${k}`, out);
  } else {
    out.set(at, JSON.stringify(value));
  }
}

/**
 * What differs between the manifest of the last build and the current one, one line per changed
 * value: `.steps[0].install[1]: "curl" -> "wget"`. A changed parent key is reported as such.
 */
export function manifestDiff(before: LayerManifest, after: LayerManifest): string[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(before, '', a);
  flatten(after, '', b);
  const lines: string[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(k) === b.get(k)) continue;
    if (k === '.parent.key') {
      lines.push(`parent '${after.parent?.layer}' changed (key ${a.get(k)?.slice(1, 13)}... -> ${b.get(k)?.slice(1, 13)}...)`);
    } else if (!a.has(k)) {
      lines.push(`${k}: added ${b.get(k)}`);
    } else if (!b.has(k)) {
      lines.push(`${k}: removed (was ${a.get(k)})`);
    } else {
      lines.push(`${k}: ${a.get(k)} -> ${b.get(k)}`);
    }
  }
  return lines;
}
