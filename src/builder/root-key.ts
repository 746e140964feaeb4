// The set's root SSH key pair: one per set, the same for every build, so the set's key opens every
// installed build (and the stable `<set>_id_rsa` a test machine uses is one file that every base
// package ships byte-identical). Where it comes from is the set's choice:
//   ssh_key: {file: PATH}  a key file the set names (relative to the set's folder), e.g. a CI secret
//   ssh_key: {env: VAR}    the path of that file in an environment variable (GitLab "file" variables)
//   (nothing)              generated once with the set's first base build and kept in the store
//                          (<store>/<set>/root-key/), or adopted from a cache repository's base
// The public key's identity (sha256 of its type and base64, comment ignored) is an input of the
// base layer's key: a new key is a new base.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { LayerSet } from '../definitions/types.js';
import { UsageError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Store } from '../store/store.js';
import { keygen, publicKeyOf } from '../tools/ssh-keygen.js';
import type { RemoteRef } from '../records/remote.js';
import { remoteRootKey } from '../records/remote.js';

export interface RootKey {
  /** Private key file. */
  private: string;
  /** The public key line. */
  public: string;
  /** sha256 over the public key's type and base64: what the base layer's key records. */
  id: string;
  source: 'set file' | 'store';
}

export function rootKeyDir(store: Store, set: string): string {
  return path.join(store.root, set, 'root-key');
}

function storeKeyFile(store: Store, set: string): string {
  return path.join(rootKeyDir(store, set), 'id_ed25519');
}

/** The identity of a public key line: its comment is not part of it. */
export function publicKeyId(line: string): string {
  const [type, b64] = line.trim().split(/\s+/);
  return createHash('sha256').update(`${type} ${b64}`).digest('hex');
}

/** The key file the set names, if it names one (the env form resolved now). */
function setKeyFile(ls: LayerSet): string | undefined {
  const k = ls.set.sshKey;
  if (!k) return undefined;
  if (k.file !== undefined) return k.file;
  const v = process.env[k.env!];
  if (!v) throw new UsageError(`${ls.set.file}: ssh_key.env: the environment variable '${k.env}' is not set (it should hold the path of the set's root key)`);
  return path.resolve(v);
}

/** The set's key as it is now, without creating anything: from the set's file or from the store. */
export async function readRootKey(ls: LayerSet, store: Store): Promise<RootKey | undefined> {
  const file = setKeyFile(ls);
  if (file !== undefined) {
    if (!existsSync(file)) throw new UsageError(`${ls.set.file}: ssh_key: the key file '${file}' does not exist`);
    const pub = await publicKeyOf(file).catch((err: Error) => {
      throw new UsageError(`${ls.set.file}: ssh_key: '${file}' is not a readable unencrypted private key (${err.message.split('\n')[0]})`);
    });
    return { private: file, public: pub, id: publicKeyId(pub), source: 'set file' };
  }
  const stored = storeKeyFile(store, ls.set.name);
  if (!existsSync(stored)) return undefined;
  const pub = readFileSync(`${stored}.pub`, 'utf8').trim();
  return { private: stored, public: pub, id: publicKeyId(pub), source: 'store' };
}

/** Generates the set's key into the store, once (the caller holds the set's lock). */
export async function generateRootKey(ls: LayerSet, store: Store): Promise<RootKey> {
  const dir = rootKeyDir(store, ls.set.name);
  mkdirSync(dir, { recursive: true });
  const partial = path.join(dir, '.id_ed25519.partial');
  rmSync(partial, { force: true });
  rmSync(`${partial}.pub`, { force: true });
  // A stable comment: every base package ships these bytes, so they must not vary by build.
  await keygen(partial, `root@${ls.set.name} (ost-images)`);
  // Public first: a private key without its .pub is never taken for a complete pair.
  renameSync(`${partial}.pub`, `${storeKeyFile(store, ls.set.name)}.pub`);
  renameSync(partial, storeKeyFile(store, ls.set.name));
  log.info(`set '${ls.set.name}': generated its root key pair in ${dir} (kept for every later build)`);
  return (await readRootKey(ls, store))!;
}

/**
 * A base build fetched from a cache repository brings the key it was made with: a store that has no
 * key of its own for a set that names none takes that one, so later local builds of the set keep
 * the same key as the builds in the repository.
 */
export function adoptRootKey(ls: LayerSet, store: Store, privateFile: string, declaredId: string | undefined): void {
  if (ls.set.sshKey || existsSync(storeKeyFile(store, ls.set.name))) return;
  // Only the key the base says it was made with (its input manifest records the identity).
  if (!existsSync(`${privateFile}.pub`) || publicKeyId(readFileSync(`${privateFile}.pub`, 'utf8')) !== declaredId) return;
  const dir = rootKeyDir(store, ls.set.name);
  mkdirSync(dir, { recursive: true });
  for (const [from, to] of [[`${privateFile}.pub`, `${storeKeyFile(store, ls.set.name)}.pub`], [privateFile, storeKeyFile(store, ls.set.name)]] as const) {
    copyFileSync(from, `${to}.partial`);
    chmodSync(`${to}.partial`, to.endsWith('.pub') ? 0o644 : 0o600);
    renameSync(`${to}.partial`, to);
  }
  log.info(`set '${ls.set.name}': adopted the root key pair of the fetched base build`);
}

/**
 * The plan a build executes, made with the set's key: its own (set file or store), else the one the
 * newest base in the cache repositories was made with (so that base is fetched with its key). When
 * the plan must build a base and the set has no key yet, the key is generated and the plan made
 * again with it. Only `build`-like callers pass `create`; `plan` writes nothing.
 */
export async function planWithRootKey<P extends { entries: { layer: string; action: string }[] }>(
  ls: LayerSet,
  store: Store,
  remote: Map<string, RemoteRef> | undefined,
  makePlan: (rootKey: string | undefined) => P,
  opts: { create: boolean },
): Promise<{ plan: P; rootKey?: RootKey }> {
  let key = await readRootKey(ls, store);
  let plan = makePlan(key?.id ?? (remote ? remoteRootKey(remote, ls.set.name) : undefined));
  const buildsBase = plan.entries.some((e) => e.action === 'build' && ls.layers.get(e.layer)?.base);
  if (!key && buildsBase && opts.create) {
    key = await generateRootKey(ls, store);
    plan = makePlan(key.id);
  }
  return { plan, rootKey: key };
}

/**
 * rpm records each file's mtime, and `rpm -V` compares it: a key file that several installed base
 * packages share must carry the same mtime in all of them, whenever each build copied it (and a
 * CI secret file is written anew for every job). One fixed time for every shipped copy.
 */
export const KEY_FILE_MTIME = new Date('2020-01-01T00:00:00Z');

export function pinKeyFileTime(file: string): void {
  utimesSync(file, KEY_FILE_MTIME, KEY_FILE_MTIME);
}
