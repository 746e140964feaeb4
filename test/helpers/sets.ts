// A layer set shaped like the default one (base -> upgrade -> engine-installed / host-installed),
// for tests that fake the builds and exercise packaging, publishing and installing.
export function demoSet(opts: { isDefault: boolean; extraSetKeys?: string } = { isDefault: true }): Record<string, string> {
  return {
    'set.yaml': [
      'description: A test set',
      'distro: {family: debian, name: Debian, version: "12", codename: bookworm, mirror: "http://deb.debian.org/debian"}',
      `package: {prefix: ost-images, default: ${opts.isDefault}}`,
      opts.extraSetKeys ?? '',
    ].join('\n'),
    'base/layer.yaml': 'description: Fresh install with 100% fewer packages\nbase:\n  mmdebstrap: {packages: [openssh-server]}\n',
    'upgrade/layer.yaml': 'description: All updates\nparent: base\nsteps:\n  - upgrade: true\n',
    'engine-installed/layer.yaml': 'description: Engine\nparent: upgrade\nsteps:\n  - install: [postgresql]\n',
    'host-installed/layer.yaml': 'description: Host\nparent: upgrade\nsteps:\n  - install: [qemu-system-x86]\n',
  };
}
