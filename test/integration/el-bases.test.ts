// ISO + kickstart bases, what can be checked without an installer ISO: the shipped template
// rendered with a set's values, the installer's kernel command line, and the exact QEMU and
// xorriso command lines. The el9stream sets validate and plan offline.
import { output } from '../helpers/run.js';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { installerCmdline } from '../../src/builder/kickstart.js';
import { DONE_MARKER, kickstartVars, renderKickstart } from '../../src/definitions/kickstart-template.js';
import { loadLayerSet } from '../../src/definitions/load.js';
import type { KickstartBase } from '../../src/definitions/types.js';
import { installArgs } from '../../src/tools/qemu-system.js';
import { convertToArgs } from '../../src/tools/qemu-img.js';
import { extractArgs, makeIsoArgs } from '../../src/tools/xorriso.js';
import { readFileSync } from 'node:fs';

const layers = path.resolve('layers');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOSTIMAGESTESTKEY root@el9stream-base (ost-images)';

describe('the el9stream-iso kickstart', () => {
  const ls = loadLayerSet(layers, 'el9stream-iso');
  const base = ls.layers.get('base')!.base as KickstartBase;

  it('renders with the set values: root key, host name, disk, repositories, serial console, done marker', () => {
    const ks = renderKickstart(readFileSync(base.template.path, 'utf8'), kickstartVars(ls.set, base, `${KEY}\n`));
    expect(ks).toContain(`sshkey --username=root "${KEY}"\n`);
    expect(ks).toContain('network --bootproto=dhcp --hostname=el9stream\n');
    expect(ks).toContain('# One disk (10240 MiB)');
    expect(ks).toContain('bootloader --location=mbr --append="console=ttyS0,115200n8"\n');
    expect(ks).toContain('repo --name=baseos --baseurl=https://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/ --install\n');
    expect(ks).toContain('repo --name=appstream --baseurl=https://mirror.stream.centos.org/9-stream/AppStream/x86_64/os/ --install\n');
    expect(ks).toContain(`echo "${DONE_MARKER}" > /dev/ttyS0\n`);
    expect(ks).toMatch(/\npoweroff\n$/);
    expect(ks).not.toContain('{{');
  });

  it('refuses a template that names a value the builder does not have', () => {
    expect(() => renderKickstart('rootpw {{rootPassword}}\n', kickstartVars(ls.set, base, KEY))).toThrow(/rootPassword/);
  });

  it('the installer boots with the serial console, text mode, stage 2 from the ISO label and the kickstart from OEMDRV', () => {
    expect(installerCmdline('CentOS-Stream-9-BaseOS-x86_64')).toBe(
      'console=ttyS0,115200n8 inst.text inst.stage2=hd:LABEL=CentOS-Stream-9-BaseOS-x86_64 inst.ks=hd:LABEL=OEMDRV:/ks.cfg inst.notmux',
    );
    expect(installerCmdline('CentOS Stream 9')).toContain('inst.stage2=hd:LABEL=CentOS\\x20Stream\\x209 ');
  });

  it('runs QEMU with the installer kernel, the ISO and the kickstart volume as CD-ROMs, writing the new disk', () => {
    expect(installArgs({ accel: 'tcg', memMiB: 2048, smp: 2, disk: '/s/.base.partial', iso: '/d/sha256-ab', ksIso: '/w/oemdrv.iso', kernel: '/w/vmlinuz', initrd: '/w/initrd.img', append: 'console=ttyS0 inst.text' })).toEqual([
      '-accel', 'tcg', '-m', '2048', '-smp', '2', '-nographic', '-no-reboot', '-serial', 'mon:stdio',
      '-drive', 'file=/s/.base.partial,format=qcow2,if=virtio',
      '-drive', 'file=/d/sha256-ab,format=raw,media=cdrom,readonly=on',
      '-drive', 'file=/w/oemdrv.iso,format=raw,media=cdrom,readonly=on',
      '-kernel', '/w/vmlinuz', '-initrd', '/w/initrd.img', '-append', 'console=ttyS0 inst.text',
      '-nic', 'user,model=virtio-net-pci',
    ]);
    expect(extractArgs('/d/x.iso', '/images/pxeboot/vmlinuz', '/w/vmlinuz')).toEqual(['-osirrox', 'on', '-indev', '/d/x.iso', '-extract', '/images/pxeboot/vmlinuz', '/w/vmlinuz']);
    expect(makeIsoArgs('/w/oemdrv', '/w/oemdrv.iso', 'OEMDRV')).toEqual(['-as', 'mkisofs', '-quiet', '-V', 'OEMDRV', '-J', '-R', '-o', '/w/oemdrv.iso', '/w/oemdrv']);
    expect(convertToArgs('/d/sha256-ab', 'qcow2', '/s/.base.partial')).toEqual(['convert', '-q', '-f', 'qcow2', '-O', 'qcow2', '/d/sha256-ab', '/s/.base.partial']);
  });
});

describe('the el9stream set (cloud image base)', () => {
  it('validates, and plans offline with the downloads and repositories it cannot reach marked unknown', async () => {
    const ls = loadLayerSet(layers, 'el9stream');
    const base = ls.layers.get('base')!;
    expect(base.base).toMatchObject({ method: 'image', format: 'qcow2', checksumUrl: expect.stringMatching(/SHA256SUM$/) });
    expect(base.upstream).toEqual([expect.stringMatching(/GenericCloud-9-latest\.x86_64\.qcow2\.SHA256SUM$/)]);
    const store = path.join(process.env.OST_TEST_TMP ?? '/tmp', 'el9-plan-store');
    const out = await output(process.execPath, ['bin/ost-images', 'plan', '--set', 'el9stream', '--offline', '--store', store, '--json']);
    const plan = JSON.parse(out) as { entries: { layer: string; action: string; manifest: { upstream?: Record<string, string> } }[] };
    expect(plan.entries.map((e) => `${e.layer}:${e.action}`)).toEqual(['base:build', 'upgrade:build', 'engine-installed:build', 'host-installed:build']);
    expect(Object.values(plan.entries[0]!.manifest.upstream!)).toEqual(['unknown']);
  });
});
