// The libvirt domain of an `ost-images vm`, as XML, and the facts it carries in its <metadata>.
// Pure: `vm create` defines what this returns; `vm ls`, `images` and `remove-old` read the facts
// back from libvirt, so the domain itself is the record of what a VM runs on (no side file that
// could disagree with it).

/** Our namespace in <metadata>; libvirt keeps foreign elements there verbatim, keyed by namespace. */
export const VM_METADATA_NS = 'https://github.com/oVirt/ost-images/ns/vm/1';
const PREFIX = 'ost';

/** What a VM runs on and how to reach it. */
export interface VmFacts {
  set: string;
  layer: string;
  /** The build's version-release, e.g. 12-20261129174514. */
  build: string;
  /** `installed`: a build in an installed tree (dnf); `store`: a layer's build in a builder's store. */
  source: 'installed' | 'store';
  /** The installed tree (OST_IMAGES_DIR) or the store the build was taken from. */
  origin: string;
  /** The VM's own disk: a qcow2 overlay whose backing file is `backing`. */
  overlay: string;
  /** The exact build file, resolved (never a stable name, which moves on upgrades). */
  backing: string;
  consoleLog: string;
  sshPort: number;
  /** The set's private key that logs in as root. */
  key: string;
  /** When the VM was created (ISO 8601). */
  created: string;
}

export interface DomainSpec {
  name: string;
  /** kvm where KVM really works (the host probe), else qemu: TCG emulation. */
  type: 'kvm' | 'qemu';
  memoryMiB: number;
  cpus: number;
  facts: VmFacts;
}

const FACT_KEYS = ['set', 'layer', 'build', 'source', 'origin', 'overlay', 'backing', 'consoleLog', 'sshPort', 'key', 'created'] as const satisfies readonly (keyof VmFacts)[];

/** Text and attribute values, escaped for XML (quotes too: attributes here are single-quoted). */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function xmlUnescape(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

/**
 * User-mode networking with one forwarded port, as QEMU arguments. libvirt 9.0 (Debian 12) has no
 * port forwarding for <interface type='user'> (that needs its passt backend, which it rejects:
 * "Invalid value for attribute 'type' in element 'backend': 'passt'"), and a libvirt network would
 * put the guest on a bridge in a private range (192.168.122.0/24), which this workplace forbids.
 * So the NIC is passed through to QEMU: SLIRP inside the QEMU process, the guest's sshd reachable on
 * 127.0.0.1:port of the host only. The device gets a fixed PCI slot at the end of the bus: QEMU
 * reads these arguments before libvirt's own -device list, and an unaddressed NIC would take slot 2
 * from the disk libvirt put there ("PCI: slot 2 function 0 not available").
 */
export function userNetArgs(sshPort: number): string[] {
  return ['-netdev', `user,id=ostnet0,hostfwd=tcp:127.0.0.1:${sshPort}-:22`, '-device', 'virtio-net-pci,netdev=ostnet0,bus=pci.0,addr=0x1f'];
}

export function renderDomainXml(spec: DomainSpec): string {
  const e = xmlEscape;
  const f = spec.facts;
  const meta = FACT_KEYS.map((k) => `      <${PREFIX}:${k}>${e(String(f[k]))}</${PREFIX}:${k}>`).join('\n');
  const qemuArgs = userNetArgs(f.sshPort).map((a) => `    <qemu:arg value='${e(a)}'/>`).join('\n');
  // TCG's default CPU (qemu64) lacks x86-64-v2, which Enterprise Linux 9 kernels require; 'maximum'
  // is everything TCG can emulate. Under KVM the host's own CPU.
  const cpu = spec.type === 'kvm' ? `<cpu mode='host-passthrough'/>` : `<cpu mode='maximum' migratable='off'/>`;
  return `<domain type='${spec.type}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${e(spec.name)}</name>
  <title>${e(`ost-images ${f.set}/${f.layer} ${f.build}`)}</title>
  <metadata>
    <${PREFIX}:vm xmlns:${PREFIX}='${e(VM_METADATA_NS)}'>
${meta}
    </${PREFIX}:vm>
  </metadata>
  <memory unit='MiB'>${spec.memoryMiB}</memory>
  <vcpu>${spec.cpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  ${cpu}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <!-- QEMU runs as root and libvirt changes no file's owner: otherwise it would chown the whole
       backing chain to its QEMU user, installed images included (rpm -V then reports them, and
       libvirt never gives back the owner of a backing file), and a chain in a store under /root
       would not be readable at all. test-boot runs its QEMU as root the same way. -->
  <seclabel type='static' model='dac' relabel='no'>
    <label>+0:+0</label>
  </seclabel>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='${e(f.overlay)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <!-- The serial console is a pty (virsh console works) and virtlogd copies it into a file. -->
    <serial type='pty'>
      <log file='${e(f.consoleLog)}' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <!-- Entropy for the guest: an emulated guest can otherwise wait long for its first random bytes. -->
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
  </devices>
  <qemu:commandline>
${qemuArgs}
  </qemu:commandline>
</domain>
`;
}

/**
 * The facts of a domain made by `vm create`, from its XML (dumpxml, or what `virsh metadata`
 * prints: the same element without its prefix); undefined when the domain is not ours.
 */
export function parseVmFacts(xml: string): VmFacts | undefined {
  const ns = xml.indexOf(VM_METADATA_NS);
  let body = ns >= 0 ? xml.slice(ns) : xml;
  const end = body.search(/<\/(?:[A-Za-z_][\w.-]*:)?vm>/);
  if (end >= 0) body = body.slice(0, end);
  const found = new Map<string, string>();
  for (const m of body.matchAll(/<(?:[A-Za-z_][\w.-]*:)?([A-Za-z]+)>([^<]*)<\/(?:[A-Za-z_][\w.-]*:)?\1>/g)) {
    if (!found.has(m[1]!)) found.set(m[1]!, xmlUnescape(m[2]!));
  }
  if (!FACT_KEYS.every((k) => found.has(k))) return undefined;
  const sshPort = Number(found.get('sshPort'));
  const source = found.get('source');
  if (!Number.isInteger(sshPort) || (source !== 'installed' && source !== 'store')) return undefined;
  const facts = Object.fromEntries(FACT_KEYS.map((k) => [k, found.get(k)!])) as unknown as VmFacts;
  return { ...facts, sshPort, source };
}
