// Upstream digests: a layer can declare the metadata of the sources it installs from (Debian's
// InRelease, a dnf repository's repomd.xml). Their digests join the layer's key, so the layer and
// everything above it rebuild when, and only when, an upstream changed. The last known digests are
// kept in the store so `--offline` can plan without the network.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { LayerSet } from '../definitions/types.js';
import { StepError } from '../errors.js';
import { writeJsonAtomic } from '../fsutil.js';
import { log } from '../log.js';
import { digestOf } from '../tools/http.js';

export type Digests = Record<string, string>;

interface Known {
  /** url -> { digest, when it was fetched } */
  [url: string]: { sha256: string; fetchedAt: string };
}

function knownFile(storeRoot: string, set: string): string {
  return path.join(storeRoot, set, 'upstream.json');
}

function readKnown(file: string): Known {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Known) : {};
}

export function upstreamUrls(ls: LayerSet): string[] {
  return [...new Set([...ls.layers.values()].flatMap((l) => l.upstream))].sort();
}

/** The digest of every upstream URL of the set: fetched, or with `offline` the last known. */
/**
 * With `allowUnknown` (planning only), a digest never fetched is left out: the plan shows the
 * layers it feeds as needing a build, with "unknown" in their input manifest, instead of failing.
 */
export async function resolveUpstream(ls: LayerSet, storeRoot: string, opts: { offline?: boolean; allowUnknown?: boolean }): Promise<Digests> {
  const urls = upstreamUrls(ls);
  if (urls.length === 0) return {};
  const file = knownFile(storeRoot, ls.set.name);
  const known = readKnown(file);
  if (opts.offline) {
    const missing = urls.filter((u) => !known[u]);
    if (missing.length > 0 && !opts.allowUnknown) throw new StepError(`--offline, but no digest is known yet for ${missing.join(', ')}; run once with the network`);
    for (const u of missing) log.warn(`no digest known yet for ${u} (offline): layers that use it are planned as changed`);
    return Object.fromEntries(urls.filter((u) => known[u]).map((u) => [u, known[u]!.sha256]));
  }
  const digests: Digests = {};
  await Promise.all(
    urls.map(async (u) => {
      digests[u] = await digestOf(u);
      if (known[u] && known[u]!.sha256 !== digests[u]) log.info(`upstream changed: ${u}`);
    }),
  );
  const now = new Date().toISOString();
  mkdirSync(path.dirname(file), { recursive: true });
  writeJsonAtomic(file, { ...known, ...Object.fromEntries(urls.map((u) => [u, { sha256: digests[u]!, fetchedAt: now }])) });
  return digests;
}
