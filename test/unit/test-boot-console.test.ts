// What test-boot takes for "the guest reached userspace" on a serial console, checked against
// console text as real guests print it; and the read that made a booted debian13 guest look hung:
// the login prompt and a kernel message arriving in one chunk from QEMU's stdout.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { USERSPACE, testBoot } from '../../src/consume/test-boot.js';
import { removeTree } from '../helpers/tmp.js';

const reached = (console: string): boolean => USERSPACE.test(console.replace(/\r/g, ''));

// The end of a debian13 engine-installed boot under TCG (console log of a passing boot): the
// serial getty's prompt, then kernel messages of modules udev loaded a moment later, on the same
// line. systemd prints nothing more once the getty holds the console.
const DEBIAN13_TAIL = [
  '[  OK  ] Started serial-getty@ttyS0.service - Serial Getty on ttyS0.\r',
  '[  OK  ] Reached target getty.target - Login Prompts.\r',
  '[   91.691546] kvm_amd: Nested Virtualization enabled\r',
  '\r',
  'Debian GNU/Linux 13 debian13 ttyS0\r',
  '\r',
  'debian13 login: [   93.501615] powernow_k8: Power state transitions not supported\r',
  '[   93.513650] powernow_k8: Power state transitions not supported\r',
  '',
].join('\n');

describe('USERSPACE', () => {
  it('sees a login prompt that ends the console so far', () => {
    expect(reached('Debian GNU/Linux 12 debian12 ttyS0\r\n\r\ndebian12 login: ')).toBe(true);
    expect(reached('tiny login: ')).toBe(true);
    expect(reached('login: ')).toBe(true);
  });

  it('sees a login prompt that a kernel message followed on the same line', () => {
    expect(reached(DEBIAN13_TAIL)).toBe(true);
  });

  it("sees systemd's multi-user target", () => {
    expect(reached('[  OK  ] Reached target multi-user.target - Multi-User System.\r\n')).toBe(true);
  });

  it('is not fooled by what comes before userspace', () => {
    const early = [
      '         Starting systemd-logind.service - User Login Management...',
      '         Starting getty-static.service - getty on tty2-tty6 if dbus and logind are not available...',
      '[  OK  ] Started serial-getty@ttyS0.service - Serial Getty on ttyS0.',
      '[  OK  ] Reached target getty.target - Login Prompts.',
      '[   39.253503] systemd[1]: systemd-pcrextend.socket - TPM PCR Measurements skipped',
      '',
    ].join('\n');
    expect(reached(early)).toBe(false);
  });
});

describe('testBoot on a console whose prompt and kernel line come in one read', () => {
  let dir: string;
  const saved = { PATH: process.env.PATH, KVM: process.env.OST_IMAGES_KVM };

  beforeAll(() => {
    dir = mkdtempSync(path.join(process.env.OST_TEST_TMP ?? '/tmp', 'test-boot-'));
    // A stand-in for qemu-system-x86_64: one write() of the recorded tail (below PIPE_BUF, so it
    // reaches the reader whole), then a guest that stays up.
    writeFileSync(path.join(dir, 'tail'), DEBIAN13_TAIL);
    const fake = path.join(dir, 'qemu-system-x86_64');
    writeFileSync(fake, `#!/bin/sh\ncat '${path.join(dir, 'tail')}'\nexec sleep 60\n`);
    chmodSync(fake, 0o755);
    process.env.PATH = `${dir}:${saved.PATH ?? '/usr/bin:/bin'}`;
    process.env.OST_IMAGES_KVM = '0';
  });

  afterAll(() => {
    process.env.PATH = saved.PATH;
    if (saved.KVM === undefined) delete process.env.OST_IMAGES_KVM;
    else process.env.OST_IMAGES_KVM = saved.KVM;
    removeTree(dir);
  });

  it('reports the guest booted, not "did not reach userspace" after the timeout', async () => {
    const r = await testBoot(path.join(dir, 'image.qcow2'), { timeoutSec: 10, consoleLog: path.join(dir, 'console.log'), ssh: false });
    expect(r.booted).toBe(true);
    expect(r.seconds).toBeLessThan(10);
  });
});
