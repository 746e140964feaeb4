// The validated, typed form of a layer set. Everything downstream (plan, build, package) reads
// these; nothing downstream re-reads YAML.

export type DistroFamily = 'debian' | 'el';

export interface SetDef {
  /** The folder name under layers/, also the set-qualified part of package names. */
  name: string;
  dir: string;
  file: string;
  description: string;
  distro: {
    family: DistroFamily;
    /** Distribution name as it appears in summaries, e.g. "Debian". */
    name: string;
    /** Distribution version; it is the RPM Version of every layer package. */
    version: string;
    /** Debian codename / release suite, e.g. "bookworm" (debian family only). */
    codename?: string;
    mirror?: string;
    arch: 'x86_64';
  };
  image: {
    /** Virtual size of the base disk in bytes. */
    sizeBytes: number;
  };
  package: {
    prefix: string;
    /** This set provides the unqualified names (`<prefix>-<layer>`) in a repository. */
    default: boolean;
    installDir: string;
    /** rpm `_binary_payload`; undefined means the toolchain default. */
    payload?: string;
    license: string;
  };
  /** Layers that also get a flattened variant: the whole chain in one standalone qcow2, own RPM. */
  flatten: string[];
  /**
   * Where the set's root key pair comes from (builder/root-key.ts): a key file (absolute path,
   * resolved against the set's folder), or an environment variable holding its path. Absent: one
   * generated with the first base build and kept in the store.
   */
  sshKey?: { file: string; env?: undefined } | { env: string; file?: undefined };
  /**
   * `source_date` in set.yaml, as seconds since the epoch: the earliest time the set's layers
   * carry (plan/epoch.ts); absent, the builder's fixed epoch. Upstream metadata dates move it on.
   */
  sourceDate?: number;
}

export type Step =
  | { kind: 'install'; packages: string[]; index: number }
  | { kind: 'upgrade'; index: number }
  | { kind: 'run'; script: string; path: string; sha256: string; index: number }
  | { kind: 'upload'; from: string; path: string; sha256: string; to: string; mode: number; index: number }
  /** The user's own package files (custom-package layers, `build --with-packages`). */
  | { kind: 'install-local'; files: { name: string; path: string; sha256: string }[]; index: number };

interface BaseCommon {
  hostname: string;
  kernelCmdline: string[];
}

/** A Debian base installed by mmdebstrap straight into a new disk. */
export interface MmdebstrapBase extends BaseCommon {
  method: 'mmdebstrap';
  variant: string;
  suites: string[];
  components: string[];
  packages: string[];
}

/** A downloaded file, checked against a sha256 given here or read from a checksum file. */
export interface DownloadSource {
  url: string;
  sha256?: string;
  checksumUrl?: string;
}

/** A distribution's cloud image, converted to the set's size and made into the base layer. */
export interface ImageBase extends BaseCommon, DownloadSource {
  method: 'image';
  format: 'qcow2' | 'raw';
}

/** An installer ISO run unattended with a kickstart file rendered from a template. */
export interface KickstartBase extends BaseCommon {
  method: 'kickstart';
  iso: DownloadSource;
  /** The kickstart template (Handlebars) in the layer folder. */
  template: { file: string; path: string; sha256: string };
  /** Repositories the kickstart installs from (name -> baseurl). */
  repos: Record<string, string>;
  timeoutSec: number;
}

export type BaseDef = MmdebstrapBase | ImageBase | KickstartBase;

export interface LayerDef {
  name: string;
  dir: string;
  file: string;
  description: string;
  parent?: string;
  /** Where `parent` stands in the file, for messages about the layer graph. */
  parentLine?: number;
  base?: BaseDef;
  steps: Step[];
  /** URLs of upstream metadata whose digests join the layer's key. */
  upstream: string[];
  /**
   * Paths a rebuild of this layer is known to make differently, and why (`known_differences`):
   * `verify --rebuild` lists them apart and they do not make a build "different". Not an input:
   * they shape nothing in the image.
   */
  knownDifferences: { path: string; why: string }[];
}

export interface LayerSet {
  set: SetDef;
  layers: Map<string, LayerDef>;
  /** Layers in dependency order: every parent before its children. */
  order: string[];
}
