// Reading a published repository as a cache shared by every builder: which layer keys it
// publishes (each layer package provides `ost-images-key(<input key>)`), and where. Taking such a
// layer into the store is the build stage's job (build/fetch.ts).
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { StepError } from '../core/errors.js';
import { repoDirOrUrl } from '../input/paths.js';
import { log } from '../core/log.js';
import { decompress, primaryPackages, repomdLocations } from './repodata.js';
import { fetchBytes, fetchBytesIfExists } from '../tools/http.js';
import type { RemoteRef } from '../records/remote.js';


/**
 * Keys published in a repository, from its primary metadata: every package that provides
 * `ost-images-key(<key>)`, with its location, checksum and the release of the parent it pins.
 */
export function keysInPrimary(xml: string, repo: string): Map<string, RemoteRef> {
  const out = new Map<string, RemoteRef>();
  for (const p of primaryPackages(xml)) {
    const parentRelease = p.requires.map((e) => /flags="EQ" epoch="[^"]*" ver="[^"]+" rel="([^"]+)"/.exec(e)?.[1]).find(Boolean);
    const rk = p.provides.map((e) => /^name="ost-images-root-key\(([^)"]+)\)" flags="EQ" epoch="[^"]*" ver="([0-9a-f]{64})"/.exec(e)).find(Boolean);
    const rootKey = rk ? { set: rk[1]!, id: rk[2]! } : undefined;
    for (const e of p.provides) {
      const key = /^name="ost-images-key\(([0-9a-f]{64})\)"/.exec(e)?.[1];
      if (key) out.set(key, { key, repo, href: p.href, sha256: p.sha256, nvr: `${p.name}-${p.version}-${p.release}`, release: p.release, parentRelease, rootKey });
    }
  }
  return out;
}

/** Every published layer key of the given repositories (directories or URLs), first repo wins. */
export async function publishedKeys(repos: string[]): Promise<Map<string, RemoteRef>> {
  const all = new Map<string, RemoteRef>();
  // Every one checked before the first is fetched: bad input is exit 2 with nothing done.
  for (const repo of repos) repoDirOrUrl('--cache-repo', repo);
  for (const repo of repos) {
    const base = repoUrl(repo).replace(/\/?$/, '/');
    const repomd = (await fetchBytes(`${base}repodata/repomd.xml`)).toString('utf8');
    const primaryHref = repomdLocations(repomd).get('primary');
    if (!primaryHref) throw new StepError(`${base}repodata/repomd.xml names no primary metadata`);
    const raw = await fetchBytes(`${base}${primaryHref}`);
    const xml = decompress(primaryHref, raw);
    for (const [k, ref] of keysInPrimary(xml, base)) if (!all.has(k)) all.set(k, ref);
    log.debug(`cache repository ${base}: ${all.size} layer key(s)`);
  }
  return all;
}


/** One package of a repository, as its primary metadata describes it. */
export interface RepoPackage {
  name: string;
  version: string;
  release: string;
  /** `<name>-<version>-<release>` */
  nvr: string;
  /** Location relative to the repository root (`packages/<file>`). */
  href: string;
  sha256: string;
  /** Its layer key, for layer packages (flat packages have none). */
  key?: string;
  /** The release of the parent build it requires exactly, if it has a parent. */
  parentRelease?: string;
}

export interface RepoIndex {
  /** The URL it was read from, with a trailing slash. */
  url: string;
  /** False for a repository nobody has published into yet (no repomd.xml). */
  published: boolean;
  packages: RepoPackage[];
  /** Layer keys to the newest package that provides each. */
  keys: Map<string, RemoteRef>;
}

/**
 * Everything a repository publishes, from its primary metadata; a repository without metadata yet
 * (the first night of a pipeline) is empty, not an error. Two builds of one key (a layer built twice
 * from the same inputs) resolve to the newer one, whatever order createrepo_c listed them in.
 */
export async function readRepoIndex(repo: string): Promise<RepoIndex> {
  const url = repoUrl(repo).replace(/\/?$/, '/');
  const repomd = await fetchBytesIfExists(`${url}repodata/repomd.xml`);
  if (!repomd) return { url, published: false, packages: [], keys: new Map() };
  const primaryHref = repomdLocations(repomd.toString('utf8')).get('primary');
  if (!primaryHref) throw new StepError(`${url}repodata/repomd.xml names no primary metadata`);
  const xml = decompress(primaryHref, await fetchBytes(`${url}${primaryHref}`));
  const keys = new Map<string, RemoteRef>();
  for (const [k, ref] of keysInPrimary(xml, url)) keys.set(k, ref);
  const packages: RepoPackage[] = primaryPackages(xml).map((p) => ({
    name: p.name,
    version: p.version,
    release: p.release,
    nvr: `${p.name}-${p.version}-${p.release}`,
    href: p.href,
    sha256: p.sha256,
    key: p.provides.map((e) => /^name="ost-images-key\(([0-9a-f]{64})\)"/.exec(e)?.[1]).find(Boolean),
    parentRelease: p.requires.map((e) => /flags="EQ" epoch="[^"]*" ver="[^"]+" rel="([^"]+)"/.exec(e)?.[1]).find(Boolean),
  }));
  for (const p of packages) {
    const ref = p.key ? keys.get(p.key) : undefined;
    if (p.key && ref && p.release > ref.release) keys.set(p.key, { ...ref, href: p.href, sha256: p.sha256, nvr: p.nvr, release: p.release, parentRelease: p.parentRelease });
  }
  log.debug(`repository ${url}: ${packages.length} package(s), ${keys.size} layer key(s)`);
  return { url, published: true, packages, keys };
}

export function repoUrl(repo: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(repo) ? repo : pathToFileURL(path.resolve(repo)).href;
}
