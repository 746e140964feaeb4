// What no image may carry (what virt-sysprep removes): state a build makes that is per machine or
// secret, and logs and caches that record the build itself. Every VM made from an image would
// otherwise share the SSH host keys, the TLS key, the machine-id and the random seed of the one
// build, and two builds of the same inputs would differ in them. What is needed per machine is
// made at each VM's first boot instead (firstbootFiles, below). Pure data and pure renderers:
// seal.ts applies the rules on a mounted tree, and the guestfs backend runs sysprepScript inside
// the appliance.

export type SysprepAction =
  /** The file (or each file the last component's `*` matches) must not exist. */
  | 'remove'
  /** Must be empty if it exists. */
  | 'empty'
  /** Every regular file below the directory is emptied (kept with its owner and mode: daemons expect them); rotated and compressed ones are removed. */
  | 'empty-below'
  /** Every entry below the directory is removed; the directory stays. */
  | 'clear'
  /** Must be absent, empty, or a symbolic link to `target`; made that link. */
  | 'link';

export interface SysprepRule {
  path: string;
  action: SysprepAction;
  target?: string;
  why: string;
}

export const SYSPREP_RULES: readonly SysprepRule[] = [
  { path: '/etc/ssh/ssh_host_*', action: 'remove', why: 'SSH host keys: every VM would share them; each makes its own at first boot' },
  { path: '/etc/dropbear/dropbear_*_host_key', action: 'remove', why: 'dropbear host keys: every VM would share them; each makes its own at first boot' },
  { path: '/etc/ssl/private/ssl-cert-snakeoil.key', action: 'remove', why: 'the snakeoil TLS private key: made at first boot' },
  { path: '/etc/ssl/certs/ssl-cert-snakeoil.pem', action: 'remove', why: 'the snakeoil certificate goes with its key' },
  { path: '/etc/machine-id', action: 'empty', why: 'machine-id: empty, so systemd makes one at first boot' },
  { path: '/var/lib/dbus/machine-id', action: 'link', target: '/etc/machine-id', why: "D-Bus's machine-id: the machine's own, through /etc/machine-id" },
  { path: '/var/lib/systemd/random-seed', action: 'remove', why: 'the random seed: every VM would start from the same one' },
  { path: '/var/lib/systemd/credential.secret', action: 'remove', why: "systemd's credential secret: per machine" },
  { path: '/var/lib/urandom/random-seed', action: 'remove', why: 'the random seed: every VM would start from the same one' },
  { path: '/var/lib/dhcp/*', action: 'remove', why: 'DHCP leases of the build host' },
  { path: '/var/lib/dhclient/*', action: 'remove', why: 'DHCP leases of the build host' },
  { path: '/var/lib/NetworkManager/*.lease', action: 'remove', why: 'DHCP leases of the build host' },
  { path: '/var/log/journal', action: 'clear', why: "the build's journal" },
  { path: '/var/log', action: 'empty-below', why: "the build's logs (dpkg, apt, alternatives, installers)" },
  { path: '/var/cache/ldconfig/aux-cache', action: 'remove', why: "ldconfig's cache of file times: rebuilt on demand" },
  { path: '/var/cache/apt/*.bin', action: 'remove', why: "apt's package caches: rebuilt on demand" },
  { path: '/var/cache/apt/archives/*.deb', action: 'remove', why: 'downloaded packages' },
  { path: '/var/cache/debconf/*-old', action: 'remove', why: "debconf's backups of its database" },
  { path: '/var/cache/man', action: 'clear', why: "man-db's index, rebuilt on demand" },
  { path: '/var/cache/dnf', action: 'clear', why: "dnf's package and metadata cache" },
  { path: '/root/.bash_history', action: 'remove', why: 'shell history' },
  { path: '/root/.lesshst', action: 'remove', why: 'pager history' },
  { path: '/root/.viminfo', action: 'remove', why: 'editor history' },
  { path: '/root/.wget-hsts', action: 'remove', why: "wget's host list" },
  { path: '/root/.python_history', action: 'remove', why: 'shell history' },
  { path: '/root/ks-post.log', action: 'remove', why: "the kickstart's log" },
  { path: '/tmp', action: 'clear', why: 'temporary files of the build' },
  { path: '/var/tmp', action: 'clear', why: 'temporary files of the build' },
];

/** Rotated and compressed logs: emptying them would leave broken archives, so they go. */
export const ROTATED_LOG = /\.(gz|xz|zst|bz2|old|[0-9]+)$/;

/**
 * A private key in a file made during the build: whatever makes it (a package's postinst, a
 * step's script), every VM of the build would share it. The set's root key is never in the image
 * (only its public half, in authorized_keys).
 */
export const PRIVATE_KEY = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;

/** Where a file made at build time is scanned for private keys; /usr holds what packages ship. */
export const SCANNED_DIRS = ['/etc', '/var', '/root', '/home', '/srv', '/opt', '/usr/local'];
/** Larger files are not read for keys (a key file is a few KiB). */
export const SCAN_MAX_BYTES = 1024 * 1024;

/** The name, in a log line or error, of what a rule removes. */
export function describeRule(r: SysprepRule): string {
  return `${r.path} (${r.why})`;
}

// ---- First boot ----

export const FIRSTBOOT_UNIT = 'ost-images-firstboot.service';
export const FIRSTBOOT_SCRIPT = '/usr/libexec/ost-images/firstboot';

/**
 * The unit and script that make, at a VM's first boot, what sysprep took out of the image: SSH
 * host keys, dropbear's host keys, and Debian's snakeoil certificate. Ed25519 and ECDSA host keys,
 * not RSA: under TCG an RSA key costs a VM 10 to 20 s of its first boot (measured: the firstboot
 * unit took 20 s with `ssh-keygen -A`), and every client of the last decade speaks Ed25519. Each
 * only when its tool is installed and the file is missing, so one unit in the base serves whatever
 * upper layers install. Before sysinit.target, so before
 * every service that uses them (ssh, PostgreSQL's TLS), and without network or cloud-init.
 * Returned as [path, content, mode], and the symlink that enables the unit.
 */
export function firstbootFiles(): { files: [string, string, number][]; enable: [string, string] } {
  const script = [
    '#!/bin/sh',
    '# Written by ost-images: what must differ between machines is made at first boot, not at build',
    '# time (the image carries no host keys and no TLS key). Safe to run again: it makes only what is missing.',
    'set -e',
    'if command -v ssh-keygen >/dev/null 2>&1 && [ -d /etc/ssh ]; then',
    '  for t in ed25519 ecdsa; do',
    '    f=/etc/ssh/ssh_host_${t}_key',
    '    [ -e "$f" ] || ssh-keygen -q -t "$t" -N "" -f "$f"',
    '  done',
    'fi',
    'if command -v dropbearkey >/dev/null 2>&1 && [ -d /etc/dropbear ]; then',
    '  for t in ed25519 ecdsa; do',
    '    f=/etc/dropbear/dropbear_${t}_host_key',
    '    [ -e "$f" ] || dropbearkey -t "$t" -f "$f" >/dev/null',
    '  done',
    'fi',
    'if command -v make-ssl-cert >/dev/null 2>&1 && [ ! -e /etc/ssl/private/ssl-cert-snakeoil.key ]; then',
    '  make-ssl-cert generate-default-snakeoil',
    'fi',
    '',
  ].join('\n');
  const unit = [
    '# Written by ost-images: makes this machine\'s own SSH host keys and TLS certificate before the',
    '# services that use them start (the image carries none, so no two VMs share them).',
    '[Unit]',
    'Description=ost-images: per-machine keys on first boot',
    'DefaultDependencies=no',
    'After=local-fs.target systemd-remount-fs.service',
    'Before=sysinit.target ssh.service ssh.socket sshd.service dropbear.service postgresql.service shutdown.target',
    'Conflicts=shutdown.target',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${FIRSTBOOT_SCRIPT}`,
    '',
    '[Install]',
    'WantedBy=sysinit.target',
    '',
  ].join('\n');
  return {
    files: [
      [FIRSTBOOT_SCRIPT, script, 0o755],
      [`/etc/systemd/system/${FIRSTBOOT_UNIT}`, unit, 0o644],
    ],
    enable: [`/etc/systemd/system/sysinit.target.wants/${FIRSTBOOT_UNIT}`, `/etc/systemd/system/${FIRSTBOOT_UNIT}`],
  };
}

// ---- The same rules as a shell script, for the guestfs backend (run inside the appliance) ----

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * POSIX shell that applies SYSPREP_RULES, clamps every file time newer than `epoch` to it, and
 * fails listing what must not be in an image. Runs as root inside the guest (GNU find and touch).
 * The glob in a rule's last component is left to the shell; everything else is quoted.
 */
export function sysprepScript(epoch: number): string {
  const lines = ['set -u', 'bad=0'];
  for (const r of SYSPREP_RULES) {
    const dir = r.path.slice(0, r.path.lastIndexOf('/')) || '/';
    const last = r.path.slice(r.path.lastIndexOf('/') + 1);
    const glob = `${shq(dir === '/' ? '' : dir)}/${last.split('*').map((p) => (p ? shq(p) : '')).join('*')}`;
    switch (r.action) {
      case 'remove':
        lines.push(`for f in ${glob}; do if [ -e "$f" ] || [ -L "$f" ]; then rm -rf -- "$f"; fi; done`);
        break;
      case 'empty':
        lines.push(`if [ -f ${shq(r.path)} ]; then : > ${shq(r.path)}; fi`);
        break;
      case 'link':
        lines.push(`if [ -e ${shq(r.path)} ] || [ -L ${shq(r.path)} ]; then rm -f -- ${shq(r.path)}; ln -s ${shq(r.target!)} ${shq(r.path)}; fi`);
        break;
      case 'clear':
        lines.push(`if [ -d ${shq(r.path)} ] && [ ! -L ${shq(r.path)} ]; then find ${shq(r.path)} -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +; fi`);
        break;
      case 'empty-below':
        lines.push(`if [ -d ${shq(r.path)} ] && [ ! -L ${shq(r.path)} ]; then find ${shq(r.path)} -xdev -type f -regextype posix-extended -regex '.*\\.(gz|xz|zst|bz2|old|[0-9]+)$' -delete; find ${shq(r.path)} -xdev -type f -size +0 -exec truncate -s 0 {} +; fi`);
        break;
    }
  }
  // Keys made during this build: newer than the epoch, before the clamp below hides that.
  lines.push(
    `for d in ${SCANNED_DIRS.map(shq).join(' ')}; do [ -d "$d" ] || continue; find "$d" -xdev -type f -newermt @${epoch} -size -${SCAN_MAX_BYTES / 1024}k -exec grep -l -E -- '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----' {} + 2>/dev/null | while read -r f; do echo "ost-images: $f holds a private key made at build time" >&2; echo x; done; done | grep -q x && bad=1`,
    `find / -xdev -newermt @${epoch} -exec touch -h -d @${epoch} {} +`,
    'exit $bad',
  );
  return `${lines.join('\n')}\n`;
}
