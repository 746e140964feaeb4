// The host programs each command runs, declared per command (as mkosi's verbs declare theirs) and
// checked before the command does anything (cli.ts, tools/requirements.ts); `ost-images doctor`
// prints them. Read off each command's code path: the program a module runs is the argument of
// run() in tools/*.ts. A rule is in force always or under a condition on the options, the
// environment, or the layer set (how its bases are made); `optional` programs are used when
// installed. What a build runs depends on the backend: the chroot backend attaches the overlay
// (qemu-storage-daemon, loop device, partitions), mounts it and runs the guest's package manager
// in a chroot; the guestfs backend runs libguestfs's tools, and where the host can mount images it
// seals the result there too, with the chroot backend's programs. `--backend auto` takes guestfs with working KVM and libguestfs
// installed, else chroot where the host can mount images (root, /dev/fuse, /dev/loop-control), else
// guestfs: so where the host can mount images only the chroot backend's programs are required.
import type { LayerDef, LayerSet } from '../definitions/types.js';
import { GUESTFS_TOOLS, mountingImpossible } from '../tools/host.js';
import type { ToolName } from '../tools/registry.js';
import type { Options, ToolRule } from '../tools/requirements.js';

export type Rule = ToolRule<LayerSet>;

// --- what each piece of work runs -------------------------------------------------------------

/** Mounting a guest's root and running its package manager in it (every base; the chroot backend). */
const CHROOT: ToolName[] = ['losetup', 'partx', 'mount', 'umount', 'mknod', 'blkid', 'chroot', 'sync', 'fstrim', 'lsattr', 'chattr'];
/** Attaching a qcow2 image as a block device (not the mmdebstrap base, which starts on a raw file). */
const ATTACH: ToolName[] = ['qemu-storage-daemon'];
/** Reading an image's root file system (verify --rebuild compares trees). */
const READ_TREE: ToolName[] = ['qemu-storage-daemon', 'losetup', 'partx', 'mount', 'umount', 'blkid'];
const MMDEBSTRAP_BASE: ToolName[] = ['mmdebstrap', 'sfdisk', 'mke2fs', 'dumpe2fs', 'debugfs', 'e2fsck'];
// Whether a cloud image's root is ext4 or XFS shows only once it is downloaded: both growers.
const IMAGE_BASE: ToolName[] = ['sfdisk', 'e2fsck', 'resize2fs', 'xfs_growfs'];
const KICKSTART_BASE: ToolName[] = ['xorriso', 'qemu-system-x86_64'];
const PUBLISH: ToolName[] = ['rpm', 'createrepo_c'];
const SIGN: ToolName[] = ['rpmsign', 'gpg', 'rpm'];
const BOOT: ToolName[] = ['qemu-system-x86_64', 'qemu-img'];

// --- conditions --------------------------------------------------------------------------------

const opt = (o: Options, k: string): unknown => o[k];
const given = (v: unknown): boolean => typeof v === 'string' && v !== '';
const backendOf = (o: Options): string => String(opt(o, 'backend') ?? 'auto');
const canMount = (): boolean => mountingImpossible() === undefined;

/** The layers a command may build: every layer of the set, or the ones a function of the options names. */
type Builds = (ls: LayerSet, o: Options) => LayerDef[];
const everyLayer: Builds = (ls) => [...ls.layers.values()];

const baseMade = (builds: Builds, method: string) => (ls: LayerSet, o: Options) => builds(ls, o).some((l) => l.base?.method === method);
const aboveBase = (builds: Builds) => (ls: LayerSet, o: Options) => builds(ls, o).some((l) => !l.base);
const anyBase = (builds: Builds) => (ls: LayerSet, o: Options) => builds(ls, o).some((l) => l.base);

/**
 * What building layers runs: every layer (qemu-img), each base by its method, the other layers
 * by the backend. `when` says which command and option asks for it (e.g. 'with --rebuild').
 */
function building(builds: Builds, o: { if?: ToolRule['if']; when?: string } = {}): Rule[] {
  const also = (w: string): string => (o.when ? `${o.when}, ${w}` : w);
  const on = o.if ?? (() => true);
  return [
    { tools: ['qemu-img'], when: o.when, if: o.if },
    { tools: ['ssh-keygen', ...CHROOT], when: also('to make a base layer'), if: on, ifSet: anyBase(builds) },
    { tools: MMDEBSTRAP_BASE, when: also('for a base made with mmdebstrap'), if: on, ifSet: baseMade(builds, 'mmdebstrap') },
    { tools: [...ATTACH, ...IMAGE_BASE], when: also('for a base made from a cloud image'), if: on, ifSet: baseMade(builds, 'image') },
    { tools: [...ATTACH, ...KICKSTART_BASE], when: also('for a base installed with a kickstart'), if: on, ifSet: baseMade(builds, 'kickstart') },
    {
      tools: [...ATTACH, ...CHROOT],
      when: also('for the layers above the base, with --backend chroot, or guestfs or auto where the host can mount images (root, /dev/fuse, /dev/loop-control)'),
      if: (x, e) => on(x, e) && (backendOf(x) === 'chroot' || canMount()),
      ifSet: aboveBase(builds),
    },
    {
      tools: GUESTFS_TOOLS,
      when: also('for the layers above the base, with --backend guestfs, or auto where the host cannot mount images'),
      if: (x, e) => on(x, e) && (backendOf(x) === 'guestfs' || (backendOf(x) === 'auto' && !canMount())),
      ifSet: aboveBase(builds),
    },
    { tools: GUESTFS_TOOLS, optional: true, when: also('with --backend auto, used instead of the chroot backend with working KVM') },
    // The KVM probe boots the host's kernel with qemu when it can; without qemu, TCG is assumed.
    { tools: ['qemu-system-x86_64'], optional: true, when: also('to probe KVM for the guestfs backend') },
    { tools: ['umount', 'losetup'], optional: true, when: also('to release what a killed build left mounted or attached') },
  ];
}

/** The set names its root key file (ssh_key): ssh-keygen reads its public half. */
const setKeyFile: Rule = { tools: ['ssh-keygen'], when: 'when the set names its root key (ssh_key)', ifSet: (ls) => ls.set.sshKey !== undefined };

/** Fetching layers a repository already has (--cache-repo, CI jobs): checked and unpacked from the package. */
const fetching = (o: { if?: ToolRule['if']; when: string }): Rule => ({ tools: ['rpm', 'qemu-img'], ...o });

const signing = (key: (o: Options, env: NodeJS.ProcessEnv) => unknown, when: string): Rule => ({ tools: SIGN, when, if: (o, e) => given(key(o, e)) });

/** nightly and promote: --mirror, else OST_IMAGES_MIRROR. */
const mirrorsGiven = (o: Options, env: NodeJS.ProcessEnv): boolean => (Array.isArray(o.mirror) ? o.mirror.length > 0 : (env.OST_IMAGES_MIRROR ?? '').trim() !== '');

/** A mirror destination reached over ssh ([user@]host:path), with no other remote shell named. */
const overSsh = (dest: string): boolean => !dest.startsWith('rsync://') && !dest.startsWith('/') && /^[^/]*:/.test(dest);

/** verify --rebuild and nightly --reproduce: the layers rebuilt. */
const rebuilt = (key: string): Builds => (ls, o) => ((opt(o, key) as string[] | undefined) ?? []).map((l) => ls.layers.get(l)).filter((l): l is LayerDef => l !== undefined);

/** What checking a build against its inputs runs besides building it again. */
function reproducing(key: string, when: string): Rule[] {
  const on = (o: Options): boolean => Array.isArray(opt(o, key)) && (opt(o, key) as unknown[]).length > 0;
  return [
    ...building(rebuilt(key), { if: on, when }),
    { tools: READ_TREE, when: `${when}: the original and the rebuilt trees are compared`, if: on },
    { tools: ['rpmbuild', 'rpm'], when: `${when}: a packaged build's payload is compared too`, if: on },
  ];
}

// --- the commands --------------------------------------------------------------------------------

/**
 * Every command, by its path (`vm create`), with the programs it runs. A command without programs
 * has an empty list: a unit test holds this table and the registered commands to the same names.
 */
export const COMMAND_TOOLS: Record<string, Rule[]> = {
  validate: [],
  schema: [],
  plan: [setKeyFile],
  manifest: [],
  diff: [],
  build: [
    { ...setKeyFile, if: (o) => !!o.dryRun, when: 'with --dry-run, when the set names its root key (ssh_key)' },
    ...building(everyLayer, { if: (o) => !o.dryRun, when: 'unless --dry-run' }),
    fetching({ when: 'with --cache-repo', if: (o) => !o.dryRun && Array.isArray(o.cacheRepo) }),
    { tools: ['qemu-img'], when: 'when the set ships flattened variants (flatten)', if: (o) => !o.dryRun, ifSet: (ls) => ls.set.flatten.length > 0 },
    { tools: ['rpmbuild'], when: 'with --with-packages --package', if: (o) => !o.dryRun && !!o.package },
  ],
  package: [{ tools: ['rpmbuild'] }],
  all: [
    ...building(everyLayer),
    { tools: ['rpmbuild', ...PUBLISH, 'dnf', 'qemu-img'] },
    { tools: BOOT, when: 'unless --no-boot', if: (o) => o.boot !== false },
  ],
  publish: [
    { tools: PUBLISH, when: 'unless --dry-run or --rollback', if: (o) => !o.dryRun && !o.rollback },
    { tools: ['rpm'], when: 'with --dry-run or --rollback', if: (o) => !!o.dryRun || !!o.rollback },
    signing((o) => (o.rollback ? undefined : o.signKey), 'with --sign-key (or OST_IMAGES_SIGN_KEY)'),
  ],
  prune: [
    { tools: PUBLISH, when: 'unless --dry-run', if: (o) => !o.dryRun },
    signing((o) => o.signKey, 'with --sign-key (or OST_IMAGES_SIGN_KEY)'),
  ],
  nightly: [
    ...building(everyLayer),
    { tools: ['rpmbuild', ...PUBLISH, ...BOOT] },
    signing((o) => o.signKey, 'with --sign-key (or OST_IMAGES_SIGN_KEY)'),
    { tools: ['rsync'], when: 'with --mirror (or OST_IMAGES_MIRROR)', if: mirrorsGiven },
    ...reproducing('reproduce', 'with --reproduce'),
  ],
  promote: [
    { tools: PUBLISH },
    signing((o, env) => o.signKey ?? env.OST_IMAGES_SIGN_KEY, 'with --sign-key (or OST_IMAGES_SIGN_KEY)'),
    { tools: ['rsync'], when: 'with --mirror (or OST_IMAGES_MIRROR)', if: mirrorsGiven },
  ],
  mirror: [
    { tools: ['rsync'] },
    {
      tools: ['ssh'],
      when: 'for a [user@]host:path mirror, unless --rsh or RSYNC_RSH names the remote shell',
      if: (o, env) => !given(o.rsh) && !given(env.RSYNC_RSH) && ((o.to as string[] | undefined) ?? []).some(overSsh),
    },
  ],
  usage: [],
  install: [{ tools: ['dnf', 'rpm'] }],
  verify: [
    { tools: ['qemu-img'] },
    ...reproducing('rebuild', 'with --rebuild'),
    fetching({ when: 'with --rebuild --cache-repo', if: (o) => Array.isArray(o.rebuild) && Array.isArray(o.cacheRepo) }),
    { tools: ['qemu-storage-daemon'], when: 'with --rebuild --blocks', if: (o) => Array.isArray(o.rebuild) && !!o.blocks },
  ],
  'test-boot': [
    { tools: BOOT },
    { tools: ['ssh'], when: 'unless --no-ssh', if: (o) => o.ssh !== false },
  ],
  'remove-old': [
    { tools: ['rpm', 'dnf', 'qemu-img'] },
    { tools: ['virsh'], optional: true, when: "to ask libvirt which builds VMs use (without it, the VM directory's overlays)" },
  ],
  'cache ls': [],
  'cache gc': [],
  images: [
    { tools: ['qemu-img'] },
    { tools: ['virsh'], optional: true, when: "to ask libvirt which builds VMs use (without it, the VM directory's overlays)" },
  ],
  'vm create': [
    { tools: ['virsh', 'qemu-img', 'ssh'] },
    { tools: ['qemu-system-x86_64'], optional: true, when: 'to probe KVM (without it, the VM is emulated)' },
  ],
  'vm ls': [{ tools: ['virsh'] }],
  'vm ssh': [{ tools: ['virsh', 'ssh'] }],
  'vm console': [{ tools: ['virsh'] }],
  'vm stop': [{ tools: ['virsh'] }],
  'vm start': [
    { tools: ['virsh'] },
    { tools: ['ssh'], when: 'unless --no-wait', if: (o) => o.wait !== false },
  ],
  'vm rm': [{ tools: ['virsh'] }],
  'ci gitlab': [],
  'ci github': [],
  'ci layer': [
    { ...setKeyFile, when: 'when the set names its root key (ssh_key)' },
    fetching({ when: "to take the layer's parents from staging or production" }),
    ...building((ls, o) => [ls.layers.get(String(o.layer))].filter((l): l is LayerDef => l !== undefined)),
    { tools: ['rpmbuild'] },
    { tools: PUBLISH, when: 'unless --upload (or OST_IMAGES_UPLOAD)', if: (o, env) => !given(o.upload) && !given(env.OST_IMAGES_UPLOAD) },
    { tools: ['sh'], when: 'with --upload (or OST_IMAGES_UPLOAD)', if: (o, env) => given(o.upload) || given(env.OST_IMAGES_UPLOAD) },
  ],
  'ci boot': [
    setKeyFile,
    { tools: ['dnf', 'rpm', ...BOOT, 'ssh'] },
  ],
  doctor: [],
};
