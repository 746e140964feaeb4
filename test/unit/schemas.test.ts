// The layer-set schemas are compiled without checking them against the JSON Schema meta-schema at
// every start (definitions/load.ts, validateSchema: false): this is where they are checked.
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { layerSchema, setSchema } from '../../src/definitions/schema.js';

describe('the layer-set schemas', () => {
  it.each([
    ['set.yaml', setSchema],
    ['layer.yaml', layerSchema],
  ] as const)('%s: valid against the meta-schema, and compile in strict mode', (_file, schema) => {
    const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
    expect(ajv.validateSchema(schema), ajv.errorsText(ajv.errors)).toBe(true);
    expect(() => ajv.compile(schema)).not.toThrow();
  });
});
