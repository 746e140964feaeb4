// The build manifest: one machine-readable JSON file per set (`<store>/<set>/manifest.json`),
// rewritten by every build, package and nightly run, describing the current build of every layer:
// key, parent, image (sizes, sha256), package (file, size, sha256), package changes, the tools
// that made it and how long each step took. MANIFEST_SCHEMA documents every field; `ost-images
// manifest --schema` prints it, and the tests validate real manifests against it.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { LayerSet } from '../definitions/types.js';
import { writeJsonAtomic } from '../core/fsutil.js';
import { PROJECT_ROOT } from '../core/paths.js';
import { vr } from '../records/build.js';
import { FLAT_SUFFIX, flatImageFileName, packageName, rpmFileName } from '../definitions/naming.js';
import type { BuildRecord } from '../records/build.js';
import type { Store } from './store.js';
import { toolsRun, versionOf } from '../tools/run.js';
import type { ToolName } from '../tools/registry.js';

export interface ManifestFile {
  file: string;
  size: number;
  sha256: string;
}

export interface ManifestLayer {
  layer: string;
  parent: { layer: string; versionRelease: string; image: string } | null;
  key: string | null;
  versionRelease: string;
  builtAt: string;
  backend: string;
  buildSeconds: number;
  image: ManifestFile & { virtualSize: number; allocatedSize: number };
  package: (ManifestFile & { name: string; versionRelease: string }) | null;
  packages: { count: number; added: number; removed: number; upgraded: number; downgraded: number; flagged: string | null; list: string; diff: string } | null;
  /** The flattened variant, for layers the set lists under `flatten`. */
  flat: { image: ManifestFile; package: (ManifestFile & { name: string }) | null } | null;
}

export interface BuildManifest {
  schema: 1;
  set: string;
  generated: string;
  toolchain: { ostImages: string; node: string; tools: Record<string, string | null> };
  layers: ManifestLayer[];
}

const file = { type: 'object', additionalProperties: false, required: ['file', 'size', 'sha256'], properties: {} } as const;
const fileProps = {
  file: { type: 'string', description: 'file name in the store (images/ or rpms/ of the set)' },
  size: { type: 'integer', minimum: 0, description: 'bytes' },
  sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'sha256 of the whole file, hex' },
} as const;

export const MANIFEST_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://ost-images.invalid/schemas/build-manifest-1.json',
  title: 'ost-images build manifest',
  description: 'The current build of every layer of one layer set, as `<store>/<set>/manifest.json`.',
  type: 'object',
  additionalProperties: false,
  required: ['schema', 'set', 'generated', 'toolchain', 'layers'],
  properties: {
    schema: { const: 1, description: 'version of this format' },
    set: { type: 'string', description: 'layer set name (folder under layers/)' },
    generated: { type: 'string', description: 'when this manifest was written, ISO 8601 (UTC)' },
    toolchain: {
      type: 'object',
      additionalProperties: false,
      required: ['ostImages', 'node', 'tools'],
      properties: {
        ostImages: { type: 'string', description: 'ost-images version (package.json)' },
        node: { type: 'string', description: 'Node.js version that ran it' },
        tools: {
          type: 'object',
          description: 'first line of `<tool> --version` of each external tool that made the builds, null when not installed: asked when this run used the tool, else kept from the previous manifest (absent when no run has recorded it yet)',
          additionalProperties: { type: ['string', 'null'] },
        },
      },
    },
    layers: {
      type: 'array',
      description: 'in build order: every parent before its children',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['layer', 'parent', 'key', 'versionRelease', 'builtAt', 'backend', 'buildSeconds', 'image', 'package', 'packages', 'flat'],
        properties: {
          layer: { type: 'string' },
          parent: {
            description: 'the exact parent build (its image is the backing file), null for a base',
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                additionalProperties: false,
                required: ['layer', 'versionRelease', 'image'],
                properties: { layer: { type: 'string' }, versionRelease: { type: 'string' }, image: { type: 'string' } },
              },
            ],
          },
          key: { type: ['string', 'null'], pattern: '^[0-9a-f]{64}$', description: 'input key (sha256 of the canonical input manifest); null for builds of older toolchains' },
          versionRelease: { type: 'string', description: 'RPM version-release of the build, e.g. 12-20261122030902' },
          builtAt: { type: 'string', description: 'when the build started, ISO 8601 (UTC)' },
          backend: { type: 'string', description: 'base, chroot, guestfs, or the repository it was fetched from' },
          buildSeconds: { type: 'number', minimum: 0 },
          image: {
            ...file,
            required: [...file.required, 'virtualSize', 'allocatedSize'],
            properties: {
              ...fileProps,
              virtualSize: { type: 'integer', minimum: 0, description: 'guest-visible disk size, bytes' },
              allocatedSize: { type: 'integer', minimum: 0, description: 'bytes the qcow2 file occupies' },
            },
          },
          package: {
            description: 'the RPM of this build, null until packaged',
            oneOf: [
              { type: 'null' },
              {
                ...file,
                required: [...file.required, 'name', 'versionRelease'],
                properties: { ...fileProps, name: { type: 'string' }, versionRelease: { type: 'string' } },
              },
            ],
          },
          flat: {
            description: "the flattened variant (the whole chain in one standalone qcow2, package `<name>-flat`), null when the set does not ask for one or it is not made yet",
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                additionalProperties: false,
                required: ['image', 'package'],
                properties: {
                  image: { ...file, properties: fileProps },
                  package: { oneOf: [{ type: 'null' }, { ...file, required: [...file.required, 'name'], properties: { ...fileProps, name: { type: 'string' } } }] },
                },
              },
            ],
          },
          packages: {
            description: "the guest's package list after this layer and the diff against the parent (files beside the image), null when not recorded",
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                additionalProperties: false,
                required: ['count', 'added', 'removed', 'upgraded', 'downgraded', 'flagged', 'list', 'diff'],
                properties: {
                  count: { type: 'integer', minimum: 0, description: 'packages installed in the guest' },
                  added: { type: 'integer', minimum: 0 },
                  removed: { type: 'integer', minimum: 0 },
                  upgraded: { type: 'integer', minimum: 0 },
                  downgraded: { type: 'integer', minimum: 0 },
                  flagged: { type: ['string', 'null'], description: 'set when package steps changed nothing' },
                  list: { type: 'string', description: 'file name of the package list' },
                  diff: { type: 'string', description: 'file name of the diff (JSON)' },
                },
              },
            ],
          },
        },
      },
    },
  },
} as const;

const TOOLS: ToolName[] = ['qemu-img', 'qemu-system-x86_64', 'mmdebstrap', 'virt-customize', 'rpmbuild', 'createrepo_c'];

/**
 * The toolchain's versions: asked of each tool this run used (it may have made or packaged a
 * build), kept from the previous manifest for the others. Asking all six every time cost every
 * build that reused all its layers six process starts, to learn nothing new.
 */
async function toolVersions(previous: Record<string, string | null>): Promise<Record<string, string | null>> {
  const used = toolsRun();
  const tools: Record<string, string | null> = {};
  for (const t of TOOLS) {
    if (used.has(t)) tools[t] = await versionOf(t);
    else if (previous[t] !== undefined) tools[t] = previous[t];
  }
  return tools;
}

async function sha256File(f: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(f)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * sha256 of a store file, remembered by name and size from the previous manifest: images and
 * packages are hundreds of MiB, named by build, and never rewritten, so each is hashed once.
 */
async function describe(dir: string, name: string, previous: Map<string, { size: number; sha256: string }>): Promise<ManifestFile> {
  const full = path.join(dir, name);
  const st = statSync(full);
  const known = previous.get(name);
  const sha256 = known && known.size === st.size ? known.sha256 : await sha256File(full);
  return { file: name, size: st.size, sha256 };
}

async function flatEntry(ls: LayerSet, store: Store, rec: BuildRecord, previous: Map<string, { size: number; sha256: string }>): Promise<ManifestLayer['flat']> {
  const set = ls.set.name;
  const image = flatImageFileName(rec.set, rec.layer, rec);
  if (!ls.set.flatten.includes(rec.layer) || !existsSync(path.join(store.imagesDir(set), image))) return null;
  const rpm = rpmFileName(ls.set, `${rec.layer}${FLAT_SUFFIX}`, rec);
  const hasRpm = existsSync(path.join(store.rpmsDir(set), rpm));
  return {
    image: await describe(store.imagesDir(set), image, previous),
    package: hasRpm ? { ...(await describe(store.rpmsDir(set), rpm, previous)), name: packageName(ls.set, `${rec.layer}${FLAT_SUFFIX}`) } : null,
  };
}

export function manifestPath(store: Store, set: string): string {
  return path.join(store.root, set, 'manifest.json');
}

/** Writes the set's manifest from the store's current builds (and packages); returns it. */
export async function writeManifest(ls: LayerSet, store: Store): Promise<BuildManifest> {
  const set = ls.set.name;
  const out = manifestPath(store, set);
  const previous = new Map<string, { size: number; sha256: string }>();
  let previousTools: Record<string, string | null> = {};
  if (existsSync(out)) {
    try {
      const old = JSON.parse(readFileSync(out, 'utf8')) as BuildManifest;
      for (const l of old.layers) for (const f of [l.image, l.package, l.flat?.image, l.flat?.package]) if (f) previous.set(f.file, f);
      previousTools = old.toolchain?.tools ?? {};
    } catch {
      // A manifest we cannot read is rewritten from scratch.
    }
  }
  const layers: ManifestLayer[] = [];
  for (const name of ls.order) {
    const rec = store.current(set, name);
    if (!rec) continue;
    const rpm = rpmFileName(ls.set, name, rec);
    const hasRpm = existsSync(path.join(store.rpmsDir(set), rpm));
    layers.push({
      layer: name,
      parent: rec.parent ? { layer: rec.parent.layer, versionRelease: vr(rec.parent), image: rec.parent.image } : null,
      key: rec.key ?? null,
      versionRelease: vr(rec),
      builtAt: rec.builtAt,
      backend: rec.backend,
      buildSeconds: rec.seconds,
      image: { ...(await describe(store.imagesDir(set), rec.image, previous)), virtualSize: rec.virtualSize, allocatedSize: rec.allocatedSize },
      package: hasRpm ? { ...(await describe(store.rpmsDir(set), rpm, previous)), name: packageName(ls.set, name), versionRelease: vr(rec) } : null,
      packages: rec.packages ? { ...rec.packages, flagged: rec.packages.flagged ?? null } : null,
      flat: await flatEntry(ls, store, rec, previous),
    });
  }
  const tools = await toolVersions(previousTools);
  const version = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const manifest: BuildManifest = { schema: 1, set, generated: new Date().toISOString(), toolchain: { ostImages: version, node: process.version, tools }, layers };
  writeJsonAtomic(out, manifest);
  return manifest;
}
