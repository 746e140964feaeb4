// The pure parts of `ost-images vm`: virsh command lines (whole arrays), the domain XML (a file
// snapshot: any change to what libvirt is given shows in review), escaping, and the metadata the
// domain carries read back the way `vm ls` and `remove-old` read it.
import { describe, expect, it } from 'vitest';
import { parseVmFacts, renderDomainXml, userNetArgs, xmlEscape, type DomainSpec, type VmFacts } from '../../src/consume/vm-domain.js';
import { checkVmName, sshCommand } from '../../src/consume/vm.js';
import { parseMiB } from '../../src/input/numbers.js';
const parseMemory = (v: string) => parseMiB('--memory', v);
import { infoArgs } from '../../src/tools/qemu-img.js';
import { defineArgs, destroyArgs, domstateArgs, dumpxmlArgs, listAllArgs, metadataArgs, startArgs, undefineArgs, versionArgs } from '../../src/tools/virsh.js';

const facts: VmFacts = {
  set: 'debian12',
  layer: 'engine-installed',
  build: '12-20261129174514',
  source: 'installed',
  origin: '/usr/share/ost-images',
  overlay: '/var/lib/ost-images/vms/engine.qcow2',
  backing: '/usr/share/ost-images/debian12-engine-installed-12-20261129174514.qcow2',
  consoleLog: '/var/lib/ost-images/vms/engine.console.log',
  sshPort: 40022,
  key: '/usr/share/ost-images/debian12_id_rsa',
  created: '2026-11-29T18:00:00.000Z',
};
const spec: DomainSpec = { name: 'engine', type: 'qemu', memoryMiB: 2048, cpus: 2, facts };

describe('virsh', () => {
  it('talks to the system instance, quietly, with one argv per action', () => {
    const c = ['-c', 'qemu:///system', '-q'];
    expect(defineArgs('/v/.vm1.xml.tmp')).toEqual([...c, 'define', '/v/.vm1.xml.tmp']);
    expect(startArgs('vm1')).toEqual([...c, 'start', 'vm1']);
    expect(destroyArgs('vm1')).toEqual([...c, 'destroy', 'vm1']);
    expect(undefineArgs('vm1')).toEqual([...c, 'undefine', 'vm1']);
    expect(listAllArgs()).toEqual([...c, 'list', '--all', '--name']);
    expect(dumpxmlArgs('vm1')).toEqual([...c, 'dumpxml', 'vm1']);
    expect(domstateArgs('vm1')).toEqual([...c, 'domstate', 'vm1']);
    expect(metadataArgs('vm1', 'https://x/1')).toEqual([...c, 'metadata', 'vm1', '--uri', 'https://x/1']);
    expect(versionArgs()).toEqual([...c, 'version']);
  });
});

describe('qemu-img on a running VM', () => {
  it('reads a chain with --force-share only when asked', () => {
    expect(infoArgs('/v/a.qcow2', true, true)).toEqual(['info', '--output=json', '--backing-chain', '-U', '-f', 'qcow2', '/v/a.qcow2']);
    expect(infoArgs('/v/a.qcow2', true)).toEqual(['info', '--output=json', '--backing-chain', '-f', 'qcow2', '/v/a.qcow2']);
  });
});

describe('domain XML', () => {
  it('TCG: as snapshotted', async () => {
    await expect(renderDomainXml(spec)).toMatchFileSnapshot('__snapshots__/vm-domain-tcg.xml');
  });
  it('KVM: the host CPU, everything else the same', () => {
    const kvm = renderDomainXml({ ...spec, type: 'kvm' });
    expect(kvm).toContain("<domain type='kvm'");
    expect(kvm).toContain("<cpu mode='host-passthrough'/>");
    expect(kvm.replace("type='kvm'", "type='qemu'").replace("<cpu mode='host-passthrough'/>", "<cpu mode='maximum' migratable='off'/>")).toBe(renderDomainXml(spec));
  });
  it('forwards SSH to 127.0.0.1 only, through user-mode networking (no libvirt network, no bridge)', () => {
    expect(userNetArgs(40022)).toEqual(['-netdev', 'user,id=ostnet0,hostfwd=tcp:127.0.0.1:40022-:22', '-device', 'virtio-net-pci,netdev=ostnet0,bus=pci.0,addr=0x1f']);
    const xml = renderDomainXml(spec);
    expect(xml).not.toContain('<interface');
    expect(xml).not.toMatch(/192\.168\.|<network|<bridge/);
  });
  it('escapes every value', () => {
    expect(xmlEscape(`a&b<c>d"e'f`)).toBe('a&amp;b&lt;c&gt;d&quot;e&apos;f');
    const odd = { ...facts, overlay: "/v/it's <&> here.qcow2", origin: '/x/"q"' };
    const xml = renderDomainXml({ ...spec, facts: odd });
    expect(xml).toContain("<source file='/v/it&apos;s &lt;&amp;&gt; here.qcow2'/>");
    expect(xml).not.toContain("it's");
    expect(parseVmFacts(xml)).toEqual(odd);
  });
  it('carries the facts in its metadata, read back from dumpxml and from virsh metadata', () => {
    expect(parseVmFacts(renderDomainXml(spec))).toEqual(facts);
    // `virsh metadata --uri` prints our element without its prefix, re-indented.
    const bare = `<vm xmlns="https://github.com/oVirt/ost-images/ns/vm/1">\n  <set>debian12</set>\n  <layer>engine-installed</layer>\n  <build>12-20261129174514</build>\n  <source>installed</source>\n  <origin>/usr/share/ost-images</origin>\n  <overlay>/var/lib/ost-images/vms/engine.qcow2</overlay>\n  <backing>/usr/share/ost-images/debian12-engine-installed-12-20261129174514.qcow2</backing>\n  <consoleLog>/var/lib/ost-images/vms/engine.console.log</consoleLog>\n  <sshPort>40022</sshPort>\n  <key>/usr/share/ost-images/debian12_id_rsa</key>\n  <created>2026-11-29T18:00:00.000Z</created>\n</vm>\n`;
    expect(parseVmFacts(bare)).toEqual(facts);
  });
  it('a domain without our metadata is not ours', () => {
    expect(parseVmFacts("<domain type='kvm'><name>other</name><metadata/></domain>")).toBeUndefined();
    expect(parseVmFacts(renderDomainXml(spec).replace(/<ost:sshPort>40022</, '<ost:sshPort>x<'))).toBeUndefined();
  });
});

describe('vm names and options', () => {
  it.each(['engine', 'host-0', 'a', 'h.1_x', 'x'.repeat(63), '1a', 'vm14'])('accepts %s', (n) => expect(() => checkVmName(n)).not.toThrow());
  it.each(['', 'Engine', '-x', '.x', 'a/b', 'a b', '../etc', 'x'.repeat(64), 'é', '14', '74f6f556-e900-41fb-b697-6a0f643d5de6', '74f6f556e90041fbb6976a0f643d5de6'])('refuses %j with exit 2', (n) => {
    expect(() => checkVmName(n)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
  it('reads memory sizes', () => {
    expect(parseMemory('2048')).toBe(2048);
    expect(parseMemory('512M')).toBe(512);
    expect(parseMemory('2G')).toBe(2048);
    expect(parseMemory('4GiB')).toBe(4096);
    for (const bad of ['0', '-1', '2T', 'lots', '16', '2000G', '9'.repeat(400)]) expect(() => parseMemory(bad)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
  it('prints the ssh line a person can copy', () => {
    expect(sshCommand(40022, '/k')).toEqual([
      'ssh', '-i', '/k', '-p', '40022', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', 'root@127.0.0.1',
    ]);
    expect(sshCommand(40022, '/k', ['uname', '-r']).slice(-3)).toEqual(['--', 'uname', '-r']);
  });
});
