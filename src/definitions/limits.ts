// How long set and layer names may be: derived from the file names they become, so that a name that
// cannot fit fails at validate time instead of in a build an hour later, in rpmbuild, or in a test
// machine's dnf. Pure.
//
// Every file name below must fit in NAME_MAX = 255 bytes, the limit of ext4, XFS, btrfs and tmpfs
// alike. The names are ASCII (the name rules in names.ts allow nothing else), so a character is a
// byte. With S = set name, L = layer name, V = distro.version, P = package.prefix, and
// R = the release, always 14 digits (YYYYMMDDHHMMSS), the longest of each kind is
// (lengths in bytes; the names come from src/plan/naming.ts, so they cannot drift):
//
//   per build, in the store and the install directory (buildStem = S-L-V-R: S+L+V+17)
//     .S-L-V-R.package-diff.json.partial        S+L+V+44   while it is written (1 + stem + 26)
//     .S-L-V-R.qcow2.compact.partial            S+L+V+40   while the image is compacted
//     .S-L-V-R.id_ed25519.partial.pub           S+L+V+41   base layers: the key pair being made
//     .S-L-flat-V-R.qcow2.partial               S+L+V+37   flattened layers (flatten.ts)
//     S-L-flat-V-R.id_ed25519.pub               S+L+V+37   flattened layers: the chain's key
//   stable names, in the install directory (what test machines open)
//     .S-L-flat-pkglist.txt.rpm-tmp             S+L+27     the scriptlet's temporary link
//     S_id_rsa.pub                              S+11       base and flattened layers
//   packages
//     .P-S-L-flat-V-R.noarch.rpm.partial        P+S+L+V+43 copied into --out across file systems
//   work files of a run
//     L-install-build-L.PID.XXXXXX.log          2L+34      kickstart bases' console log
//     rpmbuild-L-flat.PID.XXXXXX                L+29       (PID: at most 7 digits, pid_max 2^22)
//
// So, without flattening, S + L + V <= 211 and P + S + L + V <= 217; with it, P + S + L + V <= 212;
// and a kickstart base's layer name has at most 110 characters.
import type { SetDef } from './types.js';
import {
  FLAT_SUFFIX,
  imageFileName,
  packageDiffFileName,
  packageListFileName,
  rpmFileName,
  sshKeyFileName,
  stableImageName,
  stableKeyName,
  stablePackageListName,
} from './naming.js';

export const NAME_MAX = 255;
/** Stands for the release in messages: the same length as every real one. */
export const RELEASE_PLACEHOLDER = 'YYYYMMDDHHMMSS';
/** The largest pid Linux hands out (pid_max at most 2^22), as the store's work directories name it. */
const PID = '4194304';
/** mkdtemp's six random characters. */
const RANDOM = 'XXXXXX';

export type NamePart = 'set' | 'layer' | 'prefix' | 'version';

export interface NameParts {
  set: string;
  layer: string;
  /** package.prefix; without it (set.yaml gives no valid one) the names made with it are not checked. */
  prefix?: string;
  /** distro.version; likewise. */
  version?: string;
  /** The set ships this layer flattened too. */
  flattened: boolean;
  /** How the layer's base is made; undefined for a layer on a parent (or when not known). */
  base?: 'mmdebstrap' | 'image' | 'kickstart';
}

export interface DerivedName {
  /** What the name is, for messages: "the RPM file name". */
  what: string;
  name: string;
  bytes: number;
  /** The parts it is made of: what to shorten when it is too long. */
  parts: NamePart[];
}

/** Every file name a layer of a set gives rise to (those whose parts are known). */
export function derivedNames(p: NameParts): DerivedName[] {
  const out: DerivedName[] = [];
  const add = (what: string, name: string, parts: NamePart[]): void => {
    out.push({ what, name, bytes: Buffer.byteLength(name), parts });
  };
  const labels = [p.layer, ...(p.flattened ? [`${p.layer}${FLAT_SUFFIX}`] : [])];
  if (p.version !== undefined) {
    const id = { version: p.version, release: RELEASE_PLACEHOLDER };
    const svl: NamePart[] = ['set', 'layer', 'version'];
    // build.ts writes `.<name>.partial` first and renames it; the image is compacted through
    // `.<image>.compact.partial`.
    add('build file name', `.${packageDiffFileName(p.set, p.layer, id)}.partial`, svl);
    add('build file name', `.${imageFileName(p.set, p.layer, id)}.compact.partial`, svl);
    add('build file name', `.${packageListFileName(p.set, p.layer, id)}.partial`, svl);
    if (p.base) add('build file name', `.${sshKeyFileName(p.set, p.layer, id)}.partial.pub`, svl);
    if (p.flattened) {
      const flat = `${p.layer}${FLAT_SUFFIX}`;
      add('flattened image file name', `.${imageFileName(p.set, flat, id)}.partial`, svl);
      add('flattened image file name', `${sshKeyFileName(p.set, flat, id)}.pub`, svl);
      add('flattened image file name', packageListFileName(p.set, flat, id), svl);
    }
    if (p.prefix !== undefined) {
      for (const label of labels) {
        // package.ts copies the RPM to `<out>.partial` when --out is on another file system.
        add('RPM file name', `.${rpmFileName({ name: p.set, package: { prefix: p.prefix } } as SetDef, label, id)}.partial`, ['prefix', 'set', 'layer', 'version']);
      }
    }
  }
  for (const label of labels) {
    add('stable image name', stableImageName(p.set, label), ['set', 'layer']);
    // The spec's scriptlets make each link as `.<name>.rpm-tmp` and rename it into place.
    add('stable package list name', `.${stablePackageListName(p.set, label)}.rpm-tmp`, ['set', 'layer']);
    add('work directory name', `rpmbuild-${label}.${PID}.${RANDOM}`, ['layer']);
  }
  if (p.base || p.flattened) add('stable key name', `${stableKeyName(p.set)}.pub`, ['set']);
  add('work directory name', `build-${p.layer}.${PID}.${RANDOM}`, ['layer']);
  if (p.base === 'kickstart') add('console log name', `${p.layer}-install-build-${p.layer}.${PID}.${RANDOM}.log`, ['layer']);
  return out;
}

/** The longest derived name that does not fit in NAME_MAX, if any. */
export function tooLong(p: NameParts): DerivedName | undefined {
  return derivedNames(p)
    .filter((d) => d.bytes > NAME_MAX)
    .sort((a, b) => b.bytes - a.bytes)[0];
}

/**
 * The longest layer name that fits with the rest of `p` as it is: every derived name is
 * a + k * L bytes for a layer name of L characters (k: how often the layer name occurs in it).
 */
export function maxLayerNameLength(p: Omit<NameParts, 'layer'>): number {
  const empty = derivedNames({ ...p, layer: '' });
  const one = derivedNames({ ...p, layer: 'x' });
  let max = Infinity;
  empty.forEach((d, i) => {
    const k = one[i]!.bytes - d.bytes;
    if (k > 0) max = Math.min(max, Math.floor((NAME_MAX - d.bytes) / k));
  });
  return Math.max(0, max);
}
