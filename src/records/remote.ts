// A published layer build a builder can take instead of building it: which package of which
// repository provides a layer key, and what it pins. Read from repository metadata
// (repository/read.ts), planned with (plan/plan.ts), fetched (builder/fetch.ts).

export interface RemoteRef {
  key: string;
  repo: string;
  /** Package location relative to the repository root. */
  href: string;
  sha256: string;
  nvr: string;
  release: string;
  /** The release of the parent build it requires (exact `=` Requires), if it has a parent. */
  parentRelease?: string;
  /** Base layers: the set and the identity of the root key it was made with. */
  rootKey?: { set: string; id: string };
}

/**
 * The root key identity of the newest base build of `set` in the cache repositories: what a builder
 * that has no key of its own for the set plans with, so that it fetches that base (and its key).
 */
export function remoteRootKey(remote: Map<string, RemoteRef>, set: string): string | undefined {
  let best: RemoteRef | undefined;
  for (const r of remote.values()) if (r.rootKey?.set === set && (!best || r.release > best.release)) best = r;
  return best?.rootKey?.id;
}
