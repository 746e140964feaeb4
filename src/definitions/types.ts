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
}

export type Step =
  | { kind: 'install'; packages: string[]; index: number }
  | { kind: 'upgrade'; index: number }
  | { kind: 'run'; script: string; path: string; sha256: string; index: number }
  | { kind: 'upload'; from: string; path: string; sha256: string; to: string; mode: number; index: number }
  /** The user's own package files (custom-package layers, `build --with-packages`). */
  | { kind: 'install-local'; files: { name: string; path: string; sha256: string }[]; index: number };

export interface BaseDef {
  method: 'mmdebstrap';
  variant: string;
  suites: string[];
  components: string[];
  packages: string[];
  hostname: string;
  kernelCmdline: string[];
}

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
}

export interface LayerSet {
  set: SetDef;
  layers: Map<string, LayerDef>;
  /** Layers in dependency order: every parent before its children. */
  order: string[];
}
