// The build record: what every stage after the build knows of a layer build, kept in the store
// (store/store.ts), shipped inside the layer's package, taken back by a builder that fetches it,
// and read by publish, consume and the jobs. With the input manifest it was keyed by. Ground
// floor: types and two pure conversions, no stage's code.

/**
 * Which build of a layer: Version is the set's distribution version ("12"); Release is the UTC
 * time the layer build started, YYYYMMDDHHMMSS ("20261122023500"), so newer builds sort higher in
 * rpm's version comparison and every build of a layer has its own exact NEVR that children pin
 * (definitions/naming.ts names packages and files after it).
 */
export interface BuildId {
  version: string;
  release: string;
}

export function vr(b: BuildId): string {
  return `${b.version}-${b.release}`;
}

export function releaseStamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** When a build started, from its release stamp (ISO 8601, UTC); undefined for another release. */
export function releaseTime(release: string): string | undefined {
  const m = /^([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})(?:\.[0-9]+)?$/.exec(release);
  if (!m) return undefined;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/**
 * Everything that shapes a layer's image, canonicalized into its input key (plan/keys.ts): the
 * parent's key, the distribution settings, the layer's definition, the bytes of every file its
 * steps use, the builder version, the upstream digests and the time.
 */
export interface LayerManifest {
  schema: 1;
  builder: number;
  distro: { family: string; version: string; codename?: string; mirror?: string; arch: string };
  imageSize?: number;
  layer: string;
  parent: { layer: string; key: string } | null;
  /** The base definition as it shapes the image (no host paths). */
  base?: Record<string, unknown> & { method: string };
  steps: unknown[];
  /** Digests of the layer's declared upstream metadata, by URL. */
  upstream?: Record<string, string>;
  /** Base layers: the identity of the set's root public key (builder/root-key.ts), or 'unknown'. */
  rootKey?: string;
  /**
   * SOURCE_DATE_EPOCH the layer is built with (plan/epoch.ts): derived from the other inputs, and
   * recorded so a rebuild elsewhere uses the same time without the store that derived it.
   */
  sourceDateEpoch: number;
}

export interface ParentRef extends BuildId {
  layer: string;
  image: string;
}

export interface BuildRecord extends BuildId {
  schema: 1;
  set: string;
  layer: string;
  /** Input key and the manifest it was computed from (absent in records of older toolchains). */
  key?: string;
  manifest?: LayerManifest;
  /** File name in the set's images directory. */
  image: string;
  parent?: ParentRef;
  /** Root SSH key pair (base layers): file names in the images directory. */
  sshKey?: { private: string; public: string };
  /** The guest's package list and its diff against the parent (file names in the images directory). */
  packages?: PackagesInfo;
  backend: string;
  builtAt: string;
  seconds: number;
  virtualSize: number;
  allocatedSize: number;
}

export interface PackagesInfo {
  list: string;
  diff: string;
  count: number;
  added: number;
  removed: number;
  upgraded: number;
  downgraded: number;
  flagged?: string;
}

/**
 * The build record as a package ships it: without what is true of one run only (when it ran, how
 * long it took), so packaging the same build, or a rebuild of it, gives the same payload. The
 * release stamp says when the build started.
 */
export type ShippedRecord = Omit<BuildRecord, 'builtAt' | 'seconds'>;

export function shippedRecord(rec: BuildRecord): ShippedRecord {
  const { builtAt: _builtAt, seconds: _seconds, ...rest } = rec;
  return rest;
}

/** A shipped record taken into a store (builder/fetch.ts): its start time from the release. */
export function fromShipped(rec: ShippedRecord & Partial<Pick<BuildRecord, 'builtAt' | 'seconds'>>): BuildRecord {
  return { ...rec, builtAt: rec.builtAt ?? releaseTime(rec.release) ?? new Date(0).toISOString(), seconds: rec.seconds ?? 0 };
}
