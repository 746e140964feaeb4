// `ost-images vm`: VMs on installed images (or on a builder's store), run by libvirt. Each VM is a
// persistent domain on qemu:///system whose only disk is an overlay in the VM directory, made on the
// exact build file its layer's stable name pointed at when the VM was created: resolved, never the
// stable name itself, because a `dnf upgrade` moves the stable name to a new build and an overlay is
// only valid on the bytes it was made on. What a VM runs on is kept in the domain's metadata
// (vm-domain.ts), so `vm ls`, `images` and `remove-old` read it back from libvirt.
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError, ToolMissingError, UsageError } from '../core/errors.js';
import { kvmUsable } from '../tools/host.js';
import { abortSignal, checkInterrupted } from '../core/interrupt.js';
import { acquireLock } from '../core/lock.js';
import { log } from '../core/log.js';
import { compareEvr } from '../core/rpmdeps.js';
import { withScope } from '../core/scope.js';
import { Store } from '../store/store.js';
import * as qemuImg from '../tools/qemu-img.js';
import { run } from '../tools/run.js';
import { sshArgs } from '../tools/ssh.js';
import * as virsh from '../tools/virsh.js';
import { consoleTail, freePort, waitForSsh } from './guest-ssh.js';
import { defaultVmDir, resolveInstalled, scanInstalled, vrOf } from './installed.js';
import { shippedKey } from './test-boot.js';
import { VM_METADATA_NS, parseVmFacts, renderDomainXml, type VmFacts } from './vm-domain.js';

export { DEFAULT_VM_DIR, defaultVmDir } from './installed.js';

/** Also a file name and a libvirt domain name: lower case, no slashes, no leading dot or dash. */
export const VM_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** virsh takes a domain argument for an id when it is a number, and for a UUID when it looks like one. */
const VIRSH_ID_OR_UUID = /^([0-9]+|[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12})$/;

export function checkVmName(name: string): void {
  if (!VM_NAME.test(name)) throw new UsageError(`'${name}' is not a valid VM name: 1 to 63 of a-z 0-9 _ . - , starting with a letter or digit`);
  // Otherwise `vm rm 14` could reach whatever domain has id 14.
  if (VIRSH_ID_OR_UUID.test(name)) throw new UsageError(`'${name}' is not a valid VM name: virsh would read it as a domain id or UUID`);
}

export function vmFiles(vmDir: string, name: string): { overlay: string; consoleLog: string } {
  return { overlay: path.join(vmDir, `${name}.qcow2`), consoleLog: path.join(vmDir, `${name}.console.log`) };
}

/** Where the image comes from: the installed tree (what dnf put there), or a builder's store. */
export type ImageSource = { kind: 'installed'; imagesDir: string } | { kind: 'store'; storeDir: string };

interface ImageChoice {
  set: string;
  layer: string;
  build: string;
  /** The exact build file, absolute, symlinks resolved. */
  file: string;
  key: string;
  source: VmFacts['source'];
  origin: string;
}

/** The build to make the VM on, and the key that logs in to it. Bad input: UsageError, nothing made. */
async function chooseImage(from: ImageSource, set: string, layer: string): Promise<ImageChoice> {
  if (from.kind === 'installed') {
    const r = resolveInstalled(from.imagesDir, set, layer);
    const key = r.key ?? (await shippedKey(r.build.file));
    if (!key) throw new UsageError(`set '${set}' has no root key in ${path.resolve(from.imagesDir)} (${set}_id_rsa): install its base package`);
    return { set, layer, build: vrOf(r.build), file: r.build.file, key, source: 'installed', origin: path.resolve(from.imagesDir) };
  }
  const store = new Store(from.storeDir);
  const rec = store.current(set, layer);
  if (!rec) {
    const builds = path.join(store.root, set, 'builds');
    const layers = existsSync(builds) ? readdirSync(builds).filter((l) => store.current(set, l)) : [];
    throw new UsageError(`no current build of layer '${layer}' of set '${set}' in the store ${store.root} (layers with builds: ${layers.join(', ') || 'none'})`);
  }
  const file = realpathSync(store.imagePath(set, rec.image));
  const key = await shippedKey(file);
  if (!key) throw new UsageError(`the chain of ${file} ships no root key (no .id_ed25519 beside its base): cannot log in to it`);
  return { set, layer, build: vrOf(rec), file, key, source: 'store', origin: store.root };
}

export interface VmEntry {
  name: string;
  /** libvirt's word: running, shut off, paused, crashed, ... */
  state: string;
  facts: VmFacts;
}

/** Every domain `vm create` made (those with our metadata), running or not. */
export async function listVms(): Promise<VmEntry[]> {
  const out: VmEntry[] = [];
  for (const name of await virsh.listAll()) {
    const md = await virsh.metadata(name, VM_METADATA_NS);
    const facts = md ? parseVmFacts(md) : undefined;
    if (!facts) continue;
    out.push({ name, state: (await virsh.domstate(name)) ?? 'gone', facts });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Our VM `name`; UsageError when there is none, or the domain of that name is not ours. */
async function getVm(name: string): Promise<VmEntry> {
  checkVmName(name);
  const state = await virsh.domstate(name);
  if (state === undefined) throw new UsageError(`there is no VM '${name}' (ost-images vm ls lists them)`);
  const md = await virsh.metadata(name, VM_METADATA_NS);
  const facts = md ? parseVmFacts(md) : undefined;
  if (!facts) throw new UsageError(`libvirt domain '${name}' was not made by ost-images vm; not touching it`);
  return { name, state, facts };
}

/**
 * Our VM `name`, when its overlay is in the VM directory in effect: libvirt's domain names are the
 * host's, VM directories are not, so a CI job or a checkout acting on its own VMs by name must not
 * stop, start, enter or remove another's that happens to share the name (UsageError, exit 2).
 */
async function getOwnVm(name: string, vmDirArg: string, verb: string): Promise<VmEntry> {
  const v = await getVm(name);
  const vmDir = path.resolve(vmDirArg);
  const dir = path.dirname(path.resolve(v.facts.overlay));
  if (dir !== vmDir) {
    throw new UsageError(`VM '${name}' has its overlay in ${dir}, not in the VM directory ${vmDir}; not touching it (ost-images vm ${verb} ${name} --vm-dir ${dir})`);
  }
  return v;
}

/** Destroys (if running) and undefines a domain; runs after an interrupt too. */
async function removeDomain(name: string): Promise<void> {
  const state = await virsh.domstate(name, { cleanup: true });
  if (state === undefined) return;
  if (state !== 'shut off') await virsh.destroy(name, { cleanup: true });
  await virsh.undefine(name, { cleanup: true });
}

/** The console log and the copies virtlogd rotated aside (`.0`, `.1`, ...). */
function removeConsoleLogs(consoleLog: string): void {
  rmSync(consoleLog, { force: true });
  const dir = path.dirname(consoleLog);
  const base = path.basename(consoleLog);
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) if (f.startsWith(base) && /^\.[0-9]+$/.test(f.slice(base.length))) rmSync(path.join(dir, f), { force: true });
}

function readTail(file: string): string {
  try {
    return consoleTail(readFileSync(file, 'utf8'));
  } catch {
    return '(no console output)';
  }
}

export interface CreateOptions {
  name: string;
  set: string;
  layer: string;
  from: ImageSource;
  vmDir: string;
  memoryMiB: number;
  cpus: number;
  timeoutSec: number;
  /** On failure, leave the domain running and the overlay in place for a post-mortem. */
  keep?: boolean;
}

export interface CreatedVm {
  name: string;
  address: string;
  port: number;
  user: string;
  key: string;
  /** The ssh command line that logs in. */
  ssh: string[];
  overlay: string;
  consoleLog: string;
  /** The overlay's backing chain, top first (qemu-img info --backing-chain). */
  backingChain: string[];
  set: string;
  layer: string;
  build: string;
  buildFile: string;
  source: VmFacts['source'];
  origin: string;
  domainType: 'kvm' | 'qemu';
  sshSeconds: number;
  hostname: string;
}

export function sshCommand(port: number, key: string, command: string[] = []): string[] {
  const args = sshArgs(port, key, command);
  // Without a command the trailing '--' only clutters the line a person copies.
  return ['ssh', ...(command.length > 0 ? args : args.slice(0, -1))];
}

/** Ports recorded by our domains, running or not: a stopped VM keeps its port for `vm start`. */
async function usedPorts(): Promise<Set<number>> {
  return new Set((await listVms()).map((v) => v.facts.sshPort));
}

async function refuseTaken(name: string, files: { overlay: string }): Promise<void> {
  if ((await virsh.domstate(name)) !== undefined) throw new UsageError(`a libvirt domain named '${name}' already exists (ost-images vm ls; virsh -c ${virsh.LIBVIRT_URI} list --all)`);
  if (existsSync(files.overlay)) throw new UsageError(`${files.overlay} already exists: a VM '${name}' without its domain? Remove it with 'ost-images vm rm ${name}'`);
}

async function waitUntilReachable(name: string, facts: VmFacts, startedAt: number, timeoutSec: number) {
  return waitForSsh({
    port: facts.sshPort,
    key: facts.key,
    startedAt,
    deadline: startedAt + timeoutSec * 1000,
    // A guest that powered off or crashed will not answer: say so at once rather than at the deadline.
    stillRunning: async () => {
      const st = await virsh.domstate(name);
      return st === 'running' ? undefined : `the VM stopped (libvirt state: ${st ?? 'gone'})`;
    },
  });
}

export async function createVm(o: CreateOptions): Promise<CreatedVm> {
  checkVmName(o.name);
  const image = await chooseImage(o.from, o.set, o.layer);
  await virsh.checkLibvirt();
  const vmDir = path.resolve(o.vmDir);
  const files = vmFiles(vmDir, o.name);
  // Before anything is written, so a taken name leaves no trace (checked again under the lock).
  await refuseTaken(o.name, files);
  const type = (await kvmUsable()) ? 'kvm' : 'qemu';
  mkdirSync(vmDir, { recursive: true });
  return withScope(async (scope) => {
    // One create at a time picks a port and defines: two would otherwise take the same port.
    const release = await acquireLock(path.join(vmDir, '.lock'), `the VM directory ${vmDir}`);
    let held = true;
    const unlock = (): void => {
      if (held) release();
      held = false;
    };
    scope.defer('VM directory lock', unlock);
    await refuseTaken(o.name, files);
    const port = await freePort(await usedPorts());
    removeConsoleLogs(files.consoleLog); // a failed VM of the same name left its log for a post-mortem
    let done = false;
    scope.defer(`VM ${o.name}`, async () => {
      if (done) return;
      if (o.keep && !abortSignal.aborted) return;
      await removeDomain(o.name);
      rmSync(files.overlay, { force: true });
    });
    await qemuImg.create(files.overlay, { backing: image.file });
    const facts: VmFacts = {
      set: image.set,
      layer: image.layer,
      build: image.build,
      source: image.source,
      origin: image.origin,
      overlay: files.overlay,
      backing: image.file,
      consoleLog: files.consoleLog,
      sshPort: port,
      key: image.key,
      created: new Date().toISOString(),
    };
    const xmlFile = path.join(vmDir, `.${o.name}.xml.tmp`);
    writeFileSync(xmlFile, renderDomainXml({ name: o.name, type, memoryMiB: o.memoryMiB, cpus: o.cpus, facts }));
    try {
      await virsh.define(xmlFile);
    } finally {
      rmSync(xmlFile, { force: true });
    }
    const t0 = Date.now();
    await virsh.start(o.name);
    unlock(); // QEMU holds its port now
    log.info(`VM ${o.name}: ${image.set}/${image.layer} ${image.build} under ${type === 'kvm' ? 'KVM' : 'TCG'}, overlay ${files.overlay}, console ${files.consoleLog}; waiting for SSH on 127.0.0.1:${port}`);
    const w = await waitUntilReachable(o.name, facts, t0, o.timeoutSec);
    if (!w.ok) {
      checkInterrupted();
      const left = o.keep
        ? `Kept for inspection (--keep): domain '${o.name}' and overlay ${files.overlay}; 'ost-images vm rm ${o.name}' removes them.`
        : `Its domain and overlay are removed; the console log is kept at ${files.consoleLog}.`;
      throw new StepError(`VM ${o.name} did not come up: ${w.reason}. ${left}\n--- last lines of its console ---\n${readTail(files.consoleLog)}`);
    }
    const chain = (await qemuImg.chain(files.overlay, { shared: true })).map((i) => i.filename);
    done = true;
    log.info(`VM ${o.name} is up (SSH after ${w.seconds.toFixed(1)}s): ${sshCommand(port, image.key).join(' ')}  (or: ost-images vm ssh ${o.name})`);
    return {
      name: o.name,
      address: '127.0.0.1',
      port,
      user: 'root',
      key: image.key,
      ssh: sshCommand(port, image.key),
      overlay: files.overlay,
      consoleLog: files.consoleLog,
      backingChain: chain,
      set: image.set,
      layer: image.layer,
      build: image.build,
      buildFile: image.file,
      source: image.source,
      origin: image.origin,
      domainType: type,
      sshSeconds: w.seconds,
      hostname: w.hostname,
    };
  });
}

export interface VmListing {
  name: string;
  /** libvirt's state, or `no domain` for an overlay in the VM directory whose domain is gone. */
  state: string;
  set?: string;
  layer?: string;
  build?: string;
  source?: VmFacts['source'];
  overlay: string;
  port?: number;
  created?: string;
  /** A newer installed (or, for store VMs, current) build of the VM's layer, by rpm version order. */
  newerBuild?: string;
}

/** The newest build of the layer where the VM's build came from, when it is newer than the VM's. */
function newerBuildOf(f: VmFacts): string | undefined {
  let newest: string | undefined;
  if (f.source === 'installed') {
    const l = scanInstalled(f.origin).find((s) => s.set === f.set)?.layers.find((x) => x.layer === f.layer);
    newest = l?.builds[0] ? vrOf(l.builds[0]) : undefined;
  } else {
    const cur = new Store(f.origin).current(f.set, f.layer);
    newest = cur ? vrOf(cur) : undefined;
  }
  return newest && compareEvr(newest, f.build) > 0 ? newest : undefined;
}

/** Overlays in the VM directory that no domain of ours uses (a domain undefined by hand). */
function strayOverlays(vmDir: string, vms: VmEntry[]): string[] {
  if (!existsSync(vmDir)) return [];
  const known = new Set(vms.map((v) => path.resolve(v.facts.overlay)));
  return readdirSync(vmDir)
    .filter((f) => f.endsWith('.qcow2') && !f.startsWith('.'))
    .map((f) => path.join(vmDir, f))
    .filter((f) => !known.has(f));
}

export async function lsVms(vmDirArg: string): Promise<VmListing[]> {
  const vmDir = path.resolve(vmDirArg);
  const vms = await listVms();
  const out: VmListing[] = vms.map((v) => ({
    name: v.name,
    state: v.state,
    set: v.facts.set,
    layer: v.facts.layer,
    build: v.facts.build,
    source: v.facts.source,
    overlay: v.facts.overlay,
    port: v.facts.sshPort,
    created: v.facts.created,
    newerBuild: newerBuildOf(v.facts),
  }));
  for (const overlay of strayOverlays(vmDir, vms)) out.push({ name: path.basename(overlay, '.qcow2'), state: 'no domain', overlay });
  return out;
}

export interface VmUse {
  vm: string;
  state: string;
  overlay: string;
  /** Every file of the overlay's backing chain below the overlay, symlinks resolved. */
  backing: string[];
}

/**
 * Which files every VM made by `vm` is backed by, running or stopped: each domain's overlay (from
 * its metadata) and every overlay in the VM directory, each chain walked with qemu-img. When
 * libvirt cannot be asked, the VM directory alone is read, with a warning.
 */
export async function vmUses(vmDirArg: string): Promise<VmUse[]> {
  const vmDir = path.resolve(vmDirArg);
  let vms: VmEntry[] = [];
  try {
    vms = await listVms();
  } catch (err) {
    // No virsh at all: no VM of ours can exist outside the VM directory; not worth a warning.
    const say = err instanceof ToolMissingError ? log.debug : log.warn;
    say(`cannot list libvirt's domains (${(err as Error).message.split('\n')[0]}); only the overlays in ${vmDir} are considered`);
  }
  const all = [
    ...vms.map((v) => ({ vm: v.name, state: v.state, overlay: v.facts.overlay })),
    ...strayOverlays(vmDir, vms).map((overlay) => ({ vm: path.basename(overlay, '.qcow2'), state: 'no domain', overlay })),
  ];
  const out: VmUse[] = [];
  for (const u of all) {
    if (!existsSync(u.overlay)) {
      log.warn(`VM ${u.vm}: its overlay ${u.overlay} is missing`);
      continue;
    }
    // -U: a running VM's QEMU holds the overlay's write lock.
    const chain = await qemuImg.chain(u.overlay, { shared: true });
    out.push({ ...u, backing: chain.slice(1).map((i) => realpathSync(i.filename)) });
  }
  return out;
}

export async function sshVm(name: string, command: string[], vmDir: string = defaultVmDir()): Promise<number> {
  const v = await getOwnVm(name, vmDir, 'ssh');
  if (v.state !== 'running') throw new UsageError(`VM ${name} is not running (${v.state}); 'ost-images vm start ${name}' starts it`);
  const r = await run('ssh', sshArgs(v.facts.sshPort, v.facts.key, command), { interactive: true, allowFailure: true });
  return r.exitCode;
}

/** Writes the VM's console log to `out`; with `follow`, keeps writing what arrives until the VM stops. */
export async function consoleVm(name: string, opts: { follow?: boolean; out?: NodeJS.WritableStream; vmDir?: string } = {}): Promise<void> {
  const v = await getOwnVm(name, opts.vmDir ?? defaultVmDir(), 'console');
  const out = opts.out ?? process.stdout;
  const file = v.facts.consoleLog;
  let pos = 0;
  const copy = async (): Promise<void> => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size < pos) pos = 0; // virtlogd rotated it
    if (size === pos) return;
    await new Promise<void>((resolve, reject) => {
      const s = createReadStream(file, { start: pos, end: size - 1 });
      s.on('data', (c) => out.write(c));
      s.on('end', resolve);
      s.on('error', reject);
    });
    pos = size;
  };
  await copy();
  if (!opts.follow) return;
  while ((await virsh.domstate(name)) === 'running') {
    await sleep(500, undefined, { signal: abortSignal }).catch(() => undefined);
    checkInterrupted();
    await copy();
  }
  await copy();
}

export async function stopVm(name: string, vmDir: string = defaultVmDir()): Promise<{ name: string; wasRunning: boolean }> {
  const v = await getOwnVm(name, vmDir, 'stop');
  if (v.state === 'shut off') {
    log.info(`VM ${name} is not running`);
    return { name, wasRunning: false };
  }
  await virsh.destroy(name);
  log.info(`VM ${name} stopped; its overlay ${v.facts.overlay} and definition are kept ('ost-images vm start ${name}', 'ost-images vm rm ${name}')`);
  return { name, wasRunning: true };
}

export async function startVm(name: string, opts: { timeoutSec: number; wait?: boolean; vmDir?: string }): Promise<{ name: string; port: number; sshSeconds?: number }> {
  const v = await getOwnVm(name, opts.vmDir ?? defaultVmDir(), 'start');
  if (v.state === 'running') {
    log.info(`VM ${name} is already running`);
    return { name, port: v.facts.sshPort };
  }
  if (!existsSync(v.facts.overlay)) throw new UsageError(`VM ${name}'s overlay ${v.facts.overlay} is gone; 'ost-images vm rm ${name}' removes the rest`);
  const t0 = Date.now();
  await virsh.start(name);
  if (opts.wait === false) return { name, port: v.facts.sshPort };
  const w = await waitUntilReachable(name, v.facts, t0, opts.timeoutSec);
  if (!w.ok) throw new StepError(`VM ${name} did not come up: ${w.reason}. It is left as it is.\n--- last lines of its console ---\n${readTail(v.facts.consoleLog)}`);
  log.info(`VM ${name} is up (SSH after ${w.seconds.toFixed(1)}s): ${sshCommand(v.facts.sshPort, v.facts.key).join(' ')}`);
  return { name, port: v.facts.sshPort, sshSeconds: w.seconds };
}

/**
 * Destroys if running, undefines, deletes the overlay and the console log. A stray overlay (no
 * domain) goes too. Only a VM whose overlay is in `vmDirArg`: anything else is a UsageError.
 */
export async function rmVm(name: string, vmDirArg: string): Promise<{ name: string; removed: string[] }> {
  checkVmName(name);
  const state = await virsh.domstate(name);
  if (state === undefined) {
    const files = vmFiles(path.resolve(vmDirArg), name);
    if (!existsSync(files.overlay)) throw new UsageError(`there is no VM '${name}' (ost-images vm ls lists them)`);
    rmSync(files.overlay, { force: true });
    removeConsoleLogs(files.consoleLog);
    log.info(`removed ${files.overlay} (its domain was already gone)`);
    return { name, removed: [files.overlay] };
  }
  const v = await getOwnVm(name, vmDirArg, 'rm');
  await removeDomain(name);
  rmSync(v.facts.overlay, { force: true });
  removeConsoleLogs(v.facts.consoleLog);
  log.info(`VM ${name} removed: domain, overlay ${v.facts.overlay}, console log`);
  return { name, removed: [`domain ${name}`, v.facts.overlay, v.facts.consoleLog] };
}
