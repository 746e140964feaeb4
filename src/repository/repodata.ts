// Reading createrepo_c's metadata back: the publish stage checks a new snapshot before serving it,
// and builders read a published repository as a cache. Only what those need is parsed: repomd.xml's
// data locations, and per package its location, checksum, name, version and dependency entries.
import { gunzipSync } from 'node:zlib';
import { StepError } from '../core/errors.js';

const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');

/** Locations of the metadata files repomd.xml names, by type (primary, filelists, other, ...). */
export function repomdLocations(xml: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of xml.matchAll(/<data type="([^"]+)">[\s\S]*?<location href="([^"]+)"/g)) out.set(m[1]!, unescape(m[2]!));
  return out;
}

export interface PrimaryPackage {
  name: string;
  version: string;
  release: string;
  href: string;
  sha256: string;
  size: number;
  /** rpm:entry elements of rpm:provides / rpm:requires, raw attribute strings. */
  provides: string[];
  requires: string[];
}

function entries(block: string | undefined): string[] {
  return [...(block ?? '').matchAll(/<rpm:entry ([^>]*)\/>/g)].map((m) => m[1]!);
}

export function primaryPackages(xml: string): PrimaryPackage[] {
  const out: PrimaryPackage[] = [];
  for (const pkg of xml.split('<package ').slice(1)) {
    const href = /<location [^>]*href="([^"]+)"/.exec(pkg)?.[1];
    const sha256 = /<checksum type="sha256" pkgid="YES">([0-9a-f]{64})<\/checksum>/.exec(pkg)?.[1];
    const name = /<name>([^<]+)<\/name>/.exec(pkg)?.[1];
    const v = /<version epoch="[^"]*" ver="([^"]+)" rel="([^"]+)"\/>/.exec(pkg);
    const size = /<size package="([0-9]+)"/.exec(pkg)?.[1];
    if (!href || !sha256 || !name || !v || !size) throw new StepError(`unreadable <package> entry in primary metadata: ${pkg.slice(0, 200)}`);
    out.push({
      name: unescape(name),
      version: unescape(v[1]!),
      release: unescape(v[2]!),
      href: unescape(href),
      sha256,
      size: Number(size),
      provides: entries(/<rpm:provides>([\s\S]*?)<\/rpm:provides>/.exec(pkg)?.[1]),
      requires: entries(/<rpm:requires>([\s\S]*?)<\/rpm:requires>/.exec(pkg)?.[1]),
    });
  }
  return out;
}

export function decompress(href: string, raw: Buffer): string {
  return (href.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}
