// Argv builders are pure: compare whole arrays, so any change to a command line is deliberate.
import { describe, expect, it } from 'vitest';
import { guestCommands } from '../../src/builder/guest.js';
import { createrepoArgs } from '../../src/tools/createrepo.js';
import { dnfArgs, dnfRemoveArgs } from '../../src/tools/dnf.js';
import { attachArgs } from '../../src/tools/losetup.js';
import { mmdebstrapArgs } from '../../src/tools/mmdebstrap.js';
import { checkArgs, createArgs, infoArgs, mapArgs } from '../../src/tools/qemu-img.js';
import { fuseExportArgs } from '../../src/tools/qemu-storage-daemon.js';
import { bootArgs, probeArgs } from '../../src/tools/qemu-system.js';
import { queryArgs, rpmbuildArgs } from '../../src/tools/rpmbuild.js';
import { keygenArgs } from '../../src/tools/ssh-keygen.js';
import { customizeArgs, guestfsEnv } from '../../src/tools/virt-customize.js';
import { chrootArgs } from '../../src/tools/chroot.js';

describe('qemu-img', () => {
  it('creates a standalone image with a size', () => {
    expect(createArgs('/s/base.qcow2', { size: 8589934592 })).toEqual(['create', '-q', '-f', 'qcow2', '/s/base.qcow2', '8589934592']);
  });
  it('creates an overlay with a relative backing name and an explicit backing format', () => {
    expect(createArgs('/s/.up.qcow2.partial', { backing: 'base-12-1.qcow2' })).toEqual([
      'create', '-q', '-f', 'qcow2', '-b', 'base-12-1.qcow2', '-F', 'qcow2', '/s/.up.qcow2.partial',
    ]);
  });
  it('reads chains and checks', () => {
    expect(infoArgs('/i.qcow2', true)).toEqual(['info', '--output=json', '--backing-chain', '-f', 'qcow2', '/i.qcow2']);
    expect(infoArgs('/i.qcow2', false)).toEqual(['info', '--output=json', '-f', 'qcow2', '/i.qcow2']);
    expect(checkArgs('/i.qcow2')).toEqual(['check', '-q', '-f', 'qcow2', '/i.qcow2']);
  });
});

describe('chroot backend tools', () => {
  it('exports a qcow2 through FUSE with discard passed down to the file', () => {
    expect(fuseExportArgs('/s/x.qcow2', '/w/disk.raw', '/w/qsd.pid')).toEqual([
      '--blockdev', 'driver=file,node-name=file0,filename=/s/x.qcow2,discard=unmap',
      '--blockdev', 'driver=qcow2,node-name=disk0,file=file0,discard=unmap',
      '--export', 'type=fuse,id=export0,node-name=disk0,mountpoint=/w/disk.raw,writable=on',
      '--daemonize', '--pidfile', '/w/qsd.pid',
    ]);
  });
  it('attaches a loop device with partition scanning', () => {
    expect(attachArgs('/w/disk.raw')).toEqual(['--find', '--show', '--partscan', '/w/disk.raw']);
    expect(attachArgs('/w/disk.raw', true)).toEqual(['--find', '--show', '--partscan', '--read-only', '/w/disk.raw']);
  });
  it('exports an image and its chain read-only for reading what it holds', () => {
    expect(fuseExportArgs('/s/x.qcow2', '/w/disk.raw', '/w/qsd.pid', true)).toEqual([
      '--blockdev', 'driver=file,node-name=file0,filename=/s/x.qcow2,read-only=on',
      '--blockdev', 'driver=qcow2,node-name=disk0,file=file0,read-only=on',
      '--export', 'type=fuse,id=export0,node-name=disk0,mountpoint=/w/disk.raw,writable=off',
      '--daemonize', '--pidfile', '/w/qsd.pid',
    ]);
    expect(mapArgs('/s/x.qcow2')).toEqual(['map', '--output=json', '-f', 'qcow2', '/s/x.qcow2']);
  });
  it('runs guest argv through chroot without a shell', () => {
    expect(chrootArgs('/w/root', ['apt-get', 'install', '-y', 'curl'])).toEqual(['/w/root', 'apt-get', 'install', '-y', 'curl']);
  });
  it('bootstraps Debian into the mounted root', () => {
    const base = { method: 'mmdebstrap' as const, variant: 'minbase', suites: ['bookworm'], components: ['main', 'contrib'], packages: ['a', 'b'], hostname: 'h', kernelCmdline: [] };
    expect(mmdebstrapArgs(base, '/w/root', 'http://deb.debian.org/debian')).toEqual([
      '--variant=minbase', '--components=main,contrib', '--include=a,b', 'bookworm', '/w/root', 'http://deb.debian.org/debian',
    ]);
  });
  it('makes an unencrypted ed25519 key', () => {
    expect(keygenArgs('/s/k', 'c')).toEqual(['-q', '-t', 'ed25519', '-N', '', '-C', 'c', '-f', '/s/k']);
  });
});

describe('guest commands', () => {
  it('Debian: apt-get without prompts or recommends, caches removed afterwards', () => {
    const c = guestCommands('debian');
    const apt = ['apt-get', '-o', 'Acquire::Retries=3', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];
    expect(c.refresh).toEqual([...apt, 'update']);
    expect(c.install(['postgresql', 'curl'])).toEqual([...apt, 'install', '-y', '--no-install-recommends', 'postgresql', 'curl']);
    expect(c.upgrade).toEqual([...apt, 'dist-upgrade', '-y']);
    expect(c.clean).toEqual([['apt-get', 'clean'], ['find', '/var/lib/apt/lists', '-type', 'f', '-exec', 'rm', '-f', '{}', '+']]);
  });
  it('EL: dnf without weak dependencies', () => {
    const c = guestCommands('el');
    expect(c.install(['vim'])).toEqual(['dnf', '-y', '--setopt=install_weak_deps=False', 'install', 'vim']);
    expect(c.upgrade).toEqual(['dnf', '-y', 'upgrade']);
    expect(c.clean).toEqual([['dnf', 'clean', 'all']]);
  });
});

describe('virt-customize', () => {
  it('turns steps into operations in order', () => {
    expect(
      customizeArgs(
        '/s/x.qcow2',
        [
          { op: 'upload', from: '/w/upload-0', to: '/etc/a', mode: 0o644 },
          { op: 'update' },
          { op: 'install', packages: ['a', 'b'] },
          { op: 'run', script: '/l/s.sh' },
          { op: 'run-command', command: 'apt-get clean' },
        ],
        { memMiB: 2048, smp: 2 },
      ),
    ).toEqual([
      '--format', 'qcow2', '-a', '/s/x.qcow2', '--memsize', '2048', '--smp', '2', '--no-logfile',
      '--upload', '/w/upload-0:/etc/a', '--chmod', '0644:/etc/a',
      '--update',
      '--install', 'a,b',
      '--run', '/l/s.sh',
      '--run-command', 'apt-get clean',
    ]);
  });
  it('forces TCG only where KVM does not work', () => {
    expect(guestfsEnv(false)).toEqual({ LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' });
    expect(guestfsEnv(true)).toEqual({ LIBGUESTFS_BACKEND: 'direct' });
  });
});

describe('packaging and repository tools', () => {
  it('rpmbuild: private topdir, given build root, flat output names', () => {
    expect(rpmbuildArgs('/t/x.spec', { topdir: '/t', buildroot: '/t/BUILDROOT', outdir: '/t/RPMS' })).toEqual([
      '-bb', '--quiet',
      '--define', '_topdir /t',
      '--define', '_tmppath /t/tmp',
      '--define', '_rpmdir /t/RPMS',
      '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      '--buildroot', '/t/BUILDROOT',
      '/t/x.spec',
    ]);
  });
  it('rpm: reads a header without checking signatures', () => {
    expect(queryArgs('/r/x.rpm').slice(0, 3)).toEqual(['-qp', '--nosignature', '--nodigest']);
  });
  it('createrepo_c: full run, or update against the directory holding the previous snapshot\'s repodata', () => {
    expect(createrepoArgs('/r/s1')).toEqual(['--quiet', '--error-exit-val', '--no-database', '--general-compress-type', 'gz', '--checksum', 'sha256', '/r/s1']);
    expect(createrepoArgs('/r/s2', '/r/s1', '/r/s2/.read')).toEqual([
      '--quiet', '--error-exit-val', '--no-database', '--general-compress-type', 'gz', '--checksum', 'sha256', '--update', '--update-md-path', '/r/s1', '--read-pkgs-list', '/r/s2/.read', '/r/s2',
    ]);
  });
  it('dnf remove: exactly the given builds, no repositories, no dependency clean-up', () => {
    expect(dnfRemoveArgs('/', ['a-1-1'])).toEqual(['-y', '--setopt=reposdir=/dev/null', '--setopt=clean_requirements_on_remove=False', '--disableplugin=*', 'remove', 'a-1-1']);
    expect(dnfRemoveArgs('/r', ['a-1-1'])).toEqual(['-y', '--setopt=reposdir=/dev/null', '--setopt=clean_requirements_on_remove=False', '--disableplugin=*', '--installroot=/r', '--releasever=ost', 'remove', 'a-1-1']);
  });
  it('dnf: a package name dnf would read as an option never reaches its argv (it takes no `--` before names)', () => {
    const o = { root: '/root', repoUrl: 'http://127.0.0.1:8000/', cacheDir: '/c' };
    expect(dnfArgs(o, ['install'], ['ost-images-base']).slice(-2)).toEqual(['install', 'ost-images-base']);
    expect(() => dnfArgs(o, ['install'], ['--installroot=/x', 'ost-images-base'])).toThrow(
      "package name '--installroot=/x' starts with '-', so a program would read it as an option",
    );
    expect(() => dnfRemoveArgs('/', ['-y'])).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
  it('dnf: one repository, no host repos, fresh metadata', () => {
    expect(dnfArgs({ root: '/root', repoUrl: 'http://127.0.0.1:8000/', cacheDir: '/c' }, ['install', 'x'])).toEqual([
      '-y', '--installroot=/root', '--releasever=ost', '--setopt=reposdir=/dev/null', '--setopt=cachedir=/c',
      '--setopt=install_weak_deps=False', '--setopt=keepcache=False', '--repofrompath=ost-images,http://127.0.0.1:8000/',
      '--repo=ost-images', '--refresh', '--nogpgcheck', 'install', 'x',
    ]);
  });
});

describe('qemu-system', () => {
  it('boots from the disk, never writing to it', () => {
    expect(bootArgs('/i.qcow2', { accel: 'tcg', memMiB: 1024, smp: 2 })).toEqual([
      '-accel', 'tcg', '-m', '1024', '-smp', '2', '-nographic', '-no-reboot', '-serial', 'mon:stdio',
      '-drive', 'file=/i.qcow2,format=qcow2,if=virtio,snapshot=on', '-nic', 'user,model=virtio-net-pci,restrict=on',
    ]);
    expect(bootArgs('/i.qcow2', { accel: 'kvm', memMiB: 512, smp: 1 }).slice(0, 4)).toEqual(['-accel', 'kvm', '-cpu', 'host']);
  });
  it('forwards the guest sshd to a loopback port only', () => {
    expect(bootArgs('/i.qcow2', { accel: 'tcg', memMiB: 1024, smp: 2, sshPort: 2222 }).slice(-2)).toEqual(['-nic', 'user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22']);
  });
  it('logs in without prompts or host-key bookkeeping', async () => {
    const { sshArgs } = await import('../../src/tools/ssh.js');
    expect(sshArgs(2222, '/k', ['hostname'])).toEqual([
      '-i', '/k', '-p', '2222', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
      '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', '--', 'hostname',
    ]);
  });
  it('probes an accelerator with a bare kernel', () => {
    expect(probeArgs('/boot/vmlinuz', 'kvm')).toEqual(['-accel', 'kvm', '-m', '256', '-nographic', '-no-reboot', '-kernel', '/boot/vmlinuz', '-append', 'console=ttyS0 panic=-1']);
  });
});

describe('qemu-img compaction', () => {
  it('rewrites densely, only what differs from the parent', async () => {
    const { compactArgs } = await import('../../src/tools/qemu-img.js');
    expect(compactArgs('/s/.a.partial', '/s/.a.c', 'p.qcow2')).toEqual(['convert', '-q', '-f', 'qcow2', '-O', 'qcow2', '-B', 'p.qcow2', '-F', 'qcow2', '/s/.a.partial', '/s/.a.c']);
    expect(compactArgs('/s/.b.partial', '/s/.b.c')).toEqual(['convert', '-q', '-f', 'qcow2', '-O', 'qcow2', '/s/.b.partial', '/s/.b.c']);
  });
});
