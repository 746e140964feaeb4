// JSON Schemas of the two kinds of layer-set file, set.yaml and layer.yaml: what the validation
// kernel (kernel.ts) checks first, and what `ost-images schema` exports (schemas/*.schema.json) for
// editors to complete and check against. They say structure and types, with a description of
// every key (what the README says it means) and, where a rule of set-checks.ts or layer-checks.ts
// is a pattern at heart, that pattern, so an editor flags the value as it is typed; the rule
// replaces the pattern's message with its own. Names of files in the layer folder, URLs, the
// layer graph and name lengths are the rules' alone. additionalProperties is false everywhere: an
// unknown key is a typo until proven otherwise.
import { DEB_COMPONENT, DEB_SUITE, HOSTNAME, INSTALL_DIR, KNOWN_DIFFERENCE_PATH, PAYLOAD, RPM_NAME, RPM_VERSION } from './names.js';

export const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

/**
 * An installer that has not finished in a week is not going to; beyond 2^31-1 ms (24.8 days)
 * Node's setTimeout would also overflow and fire at once.
 */
export const MAX_TIMEOUT_SEC = 7 * 24 * 3600;

/** A kernel argument the base adds: plain characters only (it is written into GRUB's configuration). */
export const KERNEL_ARG = /^[A-Za-z0-9_.,:=/+-]+$/;
/** An upload's mode: octal, like 0644. */
export const FILE_MODE = /^0?[0-7]{3,4}$/;
/** A sha256 as a checksum file has it: 64 lower-case hex digits. */
export const SHA256 = /^[0-9a-f]{64}$/;
/** An environment variable's name. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The shape of a `source_date` (its calendar and range are the rule's). */
export const SOURCE_DATE_SHAPE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?$/;
/** The shape of an `image.size` (its range is the rule's); parseSize reads it with the blanks trimmed. */
export const SIZE_SHAPE = /^\s*[0-9]+[KMGT]?\s*$/;

const pattern = (re: RegExp) => re.source;
const stringList = (description: string, items: Record<string, unknown> = {}) => ({ type: 'array', description, items: { type: 'string', ...items } }) as const;
const url = (description: string) => ({ type: 'string', description: `${description} (http://, https:// or file:///path, written out in full; no user name or password)` }) as const;

export const setSchema = {
  $schema: DRAFT_07,
  $id: 'https://ost-images.invalid/schemas/set.schema.json',
  title: 'ost-images layer set (layers/<set>/set.yaml)',
  description: 'A layer set: the distribution its layers are made of and how they are packaged. The folder name under layers/ is the set name; each sub-folder with a layer.yaml is a layer.',
  type: 'object',
  additionalProperties: false,
  required: ['distro', 'package'],
  properties: {
    description: { type: 'string', description: 'What the set is, for people (default: "<distro.name> <distro.version> layered images").' },
    distro: {
      type: 'object',
      description: 'The distribution every layer of the set is made of.',
      additionalProperties: false,
      required: ['family', 'name', 'version'],
      properties: {
        family: { enum: ['debian', 'el'], description: 'Which package manager runs inside the guest: debian (apt) or el (dnf).' },
        name: { type: 'string', minLength: 1, description: 'The distribution name as package summaries show it, e.g. Debian.' },
        version: {
          type: 'string',
          pattern: pattern(RPM_VERSION),
          description: "The distribution version, e.g. \"12\" (quote it); it becomes the RPM Version of every layer package (letters, digits, . _ + ~ ^; no '-').",
        },
        codename: { type: 'string', pattern: pattern(DEB_SUITE), description: 'The Debian release suite, e.g. bookworm; required for the debian family.' },
        mirror: url('The distribution mirror, e.g. http://deb.debian.org/debian; a Debian set with a mmdebstrap base installs from it'),
        arch: { enum: ['x86_64'], description: 'The guest architecture (default x86_64, the only one).' },
      },
    },
    image: {
      type: 'object',
      description: 'The disk the base layer makes.',
      additionalProperties: false,
      properties: {
        size: { type: 'string', pattern: pattern(SIZE_SHAPE), default: '8G', description: 'Virtual size of the base disk, from 1G to 16T, like 8G or 10240M (default 8G).' },
      },
    },
    package: {
      type: 'object',
      description: 'How every layer is packaged as an RPM.',
      additionalProperties: false,
      required: ['prefix'],
      properties: {
        prefix: { type: 'string', pattern: pattern(RPM_NAME), description: 'Package names are <prefix>-<set>-<layer>, e.g. ost-images.' },
        default: {
          type: 'boolean',
          default: false,
          description: "This set also provides the unqualified names <prefix>-<layer> (dnf install ost-images-engine-installed); one default set per repository (default false).",
        },
        install_dir: {
          type: 'string',
          pattern: pattern(INSTALL_DIR),
          description: 'Where packages install images and keys: an absolute path of plain folder names (default /usr/share/<prefix>; every set shares it).',
        },
        payload: { type: 'string', pattern: pattern(PAYLOAD), description: "rpm's payload setting, like w6T0L27.zstdio (the default) or w7T0.xzdio for size-critical releases." },
        license: { type: 'string', description: 'The License tag of every package (default Various).' },
      },
    },
    flatten: {
      ...stringList('Layers also shipped flattened: the whole chain in one standalone qcow2, packaged as <prefix>-<set>-<layer>-flat.'),
      uniqueItems: true,
    },
    source_date: {
      type: 'string',
      pattern: pattern(SOURCE_DATE_SHAPE),
      description: "The earliest time the layers' files carry, a UTC date from 2020-01-01 to 2099-12-31 like 2026-12-01 or 2026-12-01T06:00:00Z (default: the builder's epoch, 2026-01-01).",
    },
    ssh_key: {
      type: 'object',
      description: "Where the set's root SSH key pair comes from: exactly one of file and env (default: generated with the set's first base build and kept in the store).",
      additionalProperties: false,
      properties: {
        file: { type: 'string', description: "A private key file, relative to the set's folder (or absolute)." },
        env: { type: 'string', pattern: pattern(ENV_NAME), description: "An environment variable holding the key file's path (a CI \"file\" secret)." },
      },
    },
  },
} as const;

/** Where a download comes from and how it is checked: a URL and exactly one of sha256 and checksum_url. */
const download = (what: string) => ({
  url: url(`The ${what}'s URL, naming a file`),
  sha256: { type: 'string', pattern: pattern(SHA256), description: `The ${what}'s sha256 (64 lower-case hex digits); or give checksum_url.` },
  checksum_url: url(`A checksum file (GNU or BSD format) listing the ${what}; its digest joins the layer's key, so a new "latest" ${what} makes a new base. Or give sha256`),
});

export const layerSchema = {
  $schema: DRAFT_07,
  $id: 'https://ost-images.invalid/schemas/layer.schema.json',
  title: 'ost-images layer (layers/<set>/<layer>/layer.yaml)',
  description: "One layer of a set: a base (a fresh install) or a parent and the steps run on it. The folder name is the layer name; the files its steps use live beside this file.",
  type: 'object',
  additionalProperties: false,
  properties: {
    description: { type: 'string', description: 'What the layer is, for people (default: the layer name).' },
    parent: { type: 'string', description: 'The layer of this set this one is built on; a layer has either parent or base.' },
    upstream: stringList("URLs of metadata the layer installs from (a Release or InRelease file, a repomd.xml): their digests join the layer's key, so the layer is rebuilt when and only when they change."),
    known_differences: {
      type: 'array',
      description: 'Paths a rebuild of this layer is known to make differently, and why: `ost-images verify --rebuild` lists them apart. Not an input.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'why'],
        properties: {
          path: {
            type: 'string',
            pattern: pattern(KNOWN_DIFFERENCE_PATH),
            description: "An absolute path in the guest; '*' matches within a name, '**' any number of folders.",
          },
          why: { type: 'string', description: 'Why it differs: the step that makes it.' },
        },
      },
    },
    base: {
      type: 'object',
      description: 'How to make a fresh install, in exactly one of three ways: mmdebstrap, image or kickstart. A layer has either base or parent.',
      additionalProperties: false,
      properties: {
        image: {
          type: 'object',
          description: "A distribution's cloud image: downloaded once, checked, converted to qcow2 and grown to image.size.",
          additionalProperties: false,
          required: ['url'],
          properties: {
            ...download('image'),
            format: { enum: ['qcow2', 'raw'], description: 'The format of the download (default qcow2; never probed).' },
          },
        },
        kickstart: {
          type: 'object',
          description: 'An installer ISO run unattended under QEMU with a kickstart rendered from a template (el family).',
          additionalProperties: false,
          required: ['iso', 'template'],
          properties: {
            iso: {
              type: 'object',
              description: 'The installer ISO, downloaded and cached like an image.',
              additionalProperties: false,
              required: ['url'],
              properties: download('ISO'),
            },
            template: {
              type: 'string',
              description: 'The kickstart template (Handlebars, strict) in the layer folder, e.g. ks.cfg.hbs; variables: hostname, rootSshKey, diskSizeMiB, repos (name, url), kernelCmdline, set.name, set.version, doneMarker.',
            },
            repos: {
              type: 'object',
              description: 'Repositories the kickstart installs from, name: base URL.',
              additionalProperties: url('A repository base URL'),
            },
            timeout: { type: 'integer', minimum: 60, maximum: MAX_TIMEOUT_SEC, description: 'Seconds the installation may take, from 60 to a week (default 3600).' },
          },
        },
        mmdebstrap: {
          type: 'object',
          description: "A Debian base installed by mmdebstrap from the set's distro.mirror straight into a new disk (debian family).",
          additionalProperties: false,
          properties: {
            variant: { enum: ['minbase', 'required', 'important', 'standard'], description: "mmdebstrap's package selection (default minbase)." },
            suites: { ...stringList('Suites to install from (default: distro.codename).', { pattern: pattern(DEB_SUITE) }), minItems: 1 },
            components: { ...stringList('Archive components (default: main).', { pattern: pattern(DEB_COMPONENT) }), minItems: 1 },
            packages: stringList('Packages installed besides the variant, e.g. a kernel, GRUB and openssh-server.', { pattern: pattern(RPM_NAME) }),
          },
        },
        hostname: { type: 'string', pattern: pattern(HOSTNAME), description: 'The host name of the guest (default: the set name).' },
        kernel_cmdline: stringList('Kernel arguments added after the serial console arguments, at most 1024 bytes in all.', { pattern: pattern(KERNEL_ARG) }),
      },
    },
    steps: {
      type: 'array',
      description: 'What the layer does on its parent, in order, inside the guest.',
      items: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        errorMessage: 'a step has exactly one of: install, upgrade, run, upload',
        properties: {
          install: { ...stringList("Packages to install with the guest's package manager.", { pattern: pattern(RPM_NAME) }), minItems: 1 },
          upgrade: { const: true, description: 'A full upgrade (apt-get dist-upgrade, dnf upgrade).' },
          run: { type: 'string', description: 'A script in the layer folder, run with /bin/sh in the guest.' },
          upload: {
            type: 'object',
            description: 'A file of the layer folder copied into the guest.',
            additionalProperties: false,
            required: ['from', 'to'],
            properties: {
              from: { type: 'string', description: 'The file, in the layer folder.' },
              to: { type: 'string', description: 'Where it goes: an absolute file path in the guest.' },
              mode: { type: 'string', pattern: pattern(FILE_MODE), default: '0644', description: 'Its mode, octal and quoted, like "0644" (the default).' },
            },
          },
        },
      },
    },
  },
} as const;
