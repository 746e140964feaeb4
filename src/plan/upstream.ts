// Upstream digests: a layer can declare the metadata of the sources it installs from (Debian's
// InRelease, a dnf repository's repomd.xml). Their digests join the layer's key, so the layer and
// everything above it rebuild when, and only when, an upstream changed. The last known digests are
// kept in the store so `--offline` can plan without the network.
//
// The same fetch also reads when the metadata was published (a Release file's Date field,
// repomd.xml's revision): the newest such date in a layer's chain is the time the layer's files
// carry (plan/epoch.ts). It is a function of the fetched bytes, whose digest is in the key, so two
// builders that agree on the digests agree on the time.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { LayerSet } from '../definitions/types.js';
import { StepError } from '../core/errors.js';
import { writeJsonAtomic } from '../core/fsutil.js';
import { log } from '../core/log.js';
import { digestOf } from '../tools/http.js';

export type Digests = Record<string, string>;

/** What planning knows of the set's upstream metadata: digests and publication dates, by URL. */
export interface UpstreamView {
  digests: Digests;
  /** Seconds since the epoch; a URL whose metadata names no date is absent. */
  dates: Record<string, number>;
}

export const NO_UPSTREAM: UpstreamView = { digests: {}, dates: {} };

interface Known {
  /** url -> { digest, when it was fetched, the date the metadata names } */
  [url: string]: { sha256: string; fetchedAt: string; date?: number };
}

/** A Release file's header ends long before this; repomd.xml names its revision near the top. */
const HEAD_BYTES = 16 * 1024;

function knownFile(storeRoot: string, set: string): string {
  return path.join(storeRoot, set, 'upstream.json');
}

function readKnown(file: string): Known {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Known) : {};
}

export function upstreamUrls(ls: LayerSet): string[] {
  return [...new Set([...ls.layers.values()].flatMap((l) => l.upstream))].sort();
}

/**
 * When upstream metadata says it was published, in seconds since the epoch: Debian's Release and
 * InRelease `Date:` field (RFC 2822, in the first paragraph, before any signature), or a dnf
 * repomd.xml's `<revision>` when it is a time stamp. Undefined when the text names no date. Pure.
 */
export function metadataDate(head: Buffer | string): number | undefined {
  const text = typeof head === 'string' ? head : head.toString('latin1');
  const paragraph = text.replace(/^-----BEGIN PGP SIGNED MESSAGE-----\r?\n(?:[^\r\n]+\r?\n)*\r?\n/, '').split(/\r?\n\r?\n/)[0] ?? '';
  const date = /^Date:[ \t]*(.+?)[ \t]*$/m.exec(paragraph)?.[1];
  if (date !== undefined) {
    const ms = Date.parse(date);
    return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
  }
  const revision = /<revision>\s*([0-9]{9,11})\s*<\/revision>/.exec(text)?.[1];
  return revision !== undefined ? Number(revision) : undefined;
}

/**
 * The digest and date of every upstream URL of the set: fetched, or with `offline` the last known.
 * With `allowUnknown` (planning only), a digest never fetched is left out: the plan shows the
 * layers it feeds as needing a build, with "unknown" in their input manifest, instead of failing.
 */
export async function resolveUpstream(ls: LayerSet, storeRoot: string, opts: { offline?: boolean; allowUnknown?: boolean }): Promise<UpstreamView> {
  const urls = upstreamUrls(ls);
  if (urls.length === 0) return { digests: {}, dates: {} };
  const file = knownFile(storeRoot, ls.set.name);
  const known = readKnown(file);
  if (opts.offline) {
    const missing = urls.filter((u) => !known[u]);
    if (missing.length > 0 && !opts.allowUnknown) throw new StepError(`--offline, but no digest is known yet for ${missing.join(', ')}; run once with the network`);
    for (const u of missing) log.warn(`no digest known yet for ${u} (offline): layers that use it are planned as changed`);
    const have = urls.filter((u) => known[u]);
    for (const u of have.filter((u) => known[u]!.date === undefined)) log.warn(`no publication date known for ${u} (recorded by an older ost-images): run once with the network`);
    return {
      digests: Object.fromEntries(have.map((u) => [u, known[u]!.sha256])),
      dates: Object.fromEntries(have.filter((u) => known[u]!.date !== undefined).map((u) => [u, known[u]!.date!])),
    };
  }
  const view: UpstreamView = { digests: {}, dates: {} };
  await Promise.all(
    urls.map(async (u) => {
      const { sha256, head } = await digestOf(u, { headBytes: HEAD_BYTES });
      view.digests[u] = sha256;
      const date = metadataDate(head);
      if (date !== undefined) view.dates[u] = date;
      if (known[u] && known[u]!.sha256 !== sha256) log.info(`upstream changed: ${u}`);
    }),
  );
  const now = new Date().toISOString();
  mkdirSync(path.dirname(file), { recursive: true });
  writeJsonAtomic(file, { ...known, ...Object.fromEntries(urls.map((u) => [u, { sha256: view.digests[u]!, fetchedAt: now, date: view.dates[u] }])) });
  return view;
}
