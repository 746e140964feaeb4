// virsh: the only module that builds virsh command lines. Every VM `ost-images vm` makes is a
// persistent libvirt domain on the system instance (qemu:///system), which is where test machines
// and the system-test framework keep theirs, and which outlives the process that created it.
import { StepError } from '../core/errors.js';
import { run } from './run.js';

export const LIBVIRT_URI = 'qemu:///system';

// -q: no "Domain X defined" chatter on stdout, so what virsh prints is the answer alone.
const base = (): string[] => ['-c', LIBVIRT_URI, '-q'];

/**
 * Defines a persistent domain from an XML file. (Not /dev/stdin: a child's stdin from Node is a
 * socket, which cannot be opened by path: "Failed to open file '/dev/stdin': No such device".)
 */
export function defineArgs(xmlFile: string): string[] {
  return [...base(), 'define', xmlFile];
}

export function startArgs(name: string): string[] {
  return [...base(), 'start', name];
}

/** Stops at once, like pulling the plug: the definition and the disk stay. */
export function destroyArgs(name: string): string[] {
  return [...base(), 'destroy', name];
}

export function undefineArgs(name: string): string[] {
  return [...base(), 'undefine', name];
}

/** Every domain's name, running or not, one a line. */
export function listAllArgs(): string[] {
  return [...base(), 'list', '--all', '--name'];
}

export function dumpxmlArgs(name: string): string[] {
  return [...base(), 'dumpxml', name];
}

export function domstateArgs(name: string): string[] {
  return [...base(), 'domstate', name];
}

/** The domain's own metadata element in namespace `uri` (prints it without the prefix). */
export function metadataArgs(name: string, uri: string): string[] {
  return [...base(), 'metadata', name, '--uri', uri];
}

export function versionArgs(): string[] {
  return [...base(), 'version'];
}

/** The domain does not exist: virsh says so on stderr and exits 1, like any other failure. */
const NO_DOMAIN = /failed to get domain|Domain not found/i;
/** libvirtd (or virtlogd) is not running: the one failure worth its own advice. */
const NO_DAEMON = /failed to connect to the hypervisor|Failed to connect socket|virtlogd-sock/i;

const daemonHint =
  'is libvirtd running? Start it with `systemctl start libvirtd virtlogd`, or without systemd `virtlogd -d && libvirtd -d`';

/** Runs virsh; a failure to reach libvirt becomes a StepError that says how to start it. */
async function virsh(args: string[], opts: { cleanup?: boolean; allowFailure?: boolean } = {}) {
  const r = await run('virsh', args, { ...opts, allowFailure: true });
  const text = `${r.stderr}\n${r.stdout}`.trim();
  if (r.exitCode !== 0 && NO_DAEMON.test(text)) throw new StepError(`cannot reach libvirt at ${LIBVIRT_URI} (${daemonHint}): ${text}`);
  if (r.exitCode !== 0 && !opts.allowFailure) throw new StepError(`virsh ${args.slice(3).join(' ')} failed: ${text}`);
  return r;
}

/** Fails with advice when libvirt cannot be reached; call before doing anything else. */
export async function checkLibvirt(): Promise<void> {
  await virsh(versionArgs());
}

export async function define(xmlFile: string): Promise<void> {
  await virsh(defineArgs(xmlFile));
}

export async function start(name: string): Promise<void> {
  await virsh(startArgs(name));
}

/** Destroys a running domain; a domain that is not running is left alone. */
export async function destroy(name: string, opts: { cleanup?: boolean } = {}): Promise<void> {
  const r = await virsh(destroyArgs(name), { ...opts, allowFailure: true });
  if (r.exitCode !== 0 && !/not running/i.test(r.stderr)) throw new StepError(`virsh destroy ${name} failed: ${r.stderr.trim()}`);
}

export async function undefine(name: string, opts: { cleanup?: boolean } = {}): Promise<void> {
  await virsh(undefineArgs(name), opts);
}

export async function listAll(): Promise<string[]> {
  return (await virsh(listAllArgs())).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

export async function dumpxml(name: string): Promise<string> {
  return (await virsh(dumpxmlArgs(name))).stdout;
}

/** libvirt's state word ("running", "shut off", "paused", "crashed", ...), or undefined when no such domain. */
export async function domstate(name: string, opts: { cleanup?: boolean } = {}): Promise<string | undefined> {
  const r = await virsh(domstateArgs(name), { ...opts, allowFailure: true });
  if (r.exitCode === 0) return r.stdout.trim();
  if (NO_DOMAIN.test(r.stderr)) return undefined;
  throw new StepError(`virsh domstate ${name} failed: ${r.stderr.trim()}`);
}

/** The domain's metadata element in namespace `uri`, or undefined when it has none (not ours). */
export async function metadata(name: string, uri: string): Promise<string | undefined> {
  const r = await virsh(metadataArgs(name, uri), { allowFailure: true });
  if (r.exitCode === 0) return r.stdout;
  if (/metadata not found/i.test(r.stderr) || NO_DOMAIN.test(r.stderr)) return undefined;
  throw new StepError(`virsh metadata ${name} failed: ${r.stderr.trim()}`);
}
