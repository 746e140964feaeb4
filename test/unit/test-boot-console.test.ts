// What test-boot takes for "the guest reached userspace" on a serial console, checked against
// console text as real guests print it. The case that made a booted debian13 guest look hung:
// the login prompt and a kernel message arriving in one chunk from QEMU's stdout, so the prompt
// never ends the text read so far (the whole tail below is such a chunk).
import { describe, expect, it } from 'vitest';
import { USERSPACE } from '../../src/consume/test-boot.js';

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
