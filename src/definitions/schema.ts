// JSON Schemas for the two kinds of definition file. They check structure and types only;
// name syntax, referenced files and the layer graph are checked in load.ts, where the messages
// can say exactly what is wrong. additionalProperties is false everywhere: an unknown key is a typo
// until proven otherwise.

const stringList = { type: 'array', items: { type: 'string' } } as const;

/**
 * An installer that has not finished in a week is not going to; beyond 2^31-1 ms (24.8 days)
 * Node's setTimeout would also overflow and fire at once.
 */
export const MAX_TIMEOUT_SEC = 7 * 24 * 3600;

export const setSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['distro', 'package'],
  properties: {
    description: { type: 'string' },
    distro: {
      type: 'object',
      additionalProperties: false,
      required: ['family', 'name', 'version'],
      properties: {
        family: { enum: ['debian', 'el'] },
        name: { type: 'string', minLength: 1 },
        version: { type: 'string' },
        codename: { type: 'string' },
        mirror: { type: 'string' },
        arch: { enum: ['x86_64'] },
      },
    },
    image: {
      type: 'object',
      additionalProperties: false,
      properties: {
        size: { type: 'string' },
      },
    },
    package: {
      type: 'object',
      additionalProperties: false,
      required: ['prefix'],
      properties: {
        prefix: { type: 'string' },
        default: { type: 'boolean' },
        install_dir: { type: 'string' },
        payload: { type: 'string' },
        license: { type: 'string' },
      },
    },
    flatten: { ...stringList, uniqueItems: true },
    source_date: { type: 'string' },
    ssh_key: {
      type: 'object',
      additionalProperties: false,
      properties: {
        file: { type: 'string' },
        env: { type: 'string' },
      },
    },
  },
} as const;

export const layerSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    description: { type: 'string' },
    parent: { type: 'string' },
    upstream: stringList,
    known_differences: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'why'],
        properties: { path: { type: 'string' }, why: { type: 'string' } },
      },
    },
    base: {
      type: 'object',
      additionalProperties: false,
      properties: {
        image: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string' },
            sha256: { type: 'string' },
            checksum_url: { type: 'string' },
            format: { enum: ['qcow2', 'raw'] },
          },
        },
        kickstart: {
          type: 'object',
          additionalProperties: false,
          required: ['iso', 'template'],
          properties: {
            iso: {
              type: 'object',
              additionalProperties: false,
              required: ['url'],
              properties: { url: { type: 'string' }, sha256: { type: 'string' }, checksum_url: { type: 'string' } },
            },
            template: { type: 'string' },
            repos: { type: 'object', additionalProperties: { type: 'string' } },
            timeout: { type: 'integer', minimum: 60, maximum: MAX_TIMEOUT_SEC },
          },
        },
        mmdebstrap: {
          type: 'object',
          additionalProperties: false,
          properties: {
            variant: { enum: ['minbase', 'required', 'important', 'standard'] },
            suites: { ...stringList, minItems: 1 },
            components: { ...stringList, minItems: 1 },
            packages: stringList,
          },
        },
        hostname: { type: 'string' },
        kernel_cmdline: stringList,
      },
    },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        properties: {
          install: { ...stringList, minItems: 1 },
          upgrade: { const: true },
          run: { type: 'string' },
          upload: {
            type: 'object',
            additionalProperties: false,
            required: ['from', 'to'],
            properties: {
              from: { type: 'string' },
              to: { type: 'string' },
              mode: { type: 'string' },
            },
          },
        },
      },
    },
  },
} as const;
