// The validation kernel on a small kind of file of its own, one behaviour per test: every problem at
// once with line, key path and value; a rule reads only values of its type; a rule replaces the
// schema's keyword it words better; errorMessage; `each` groups item by item; reportAt; what
// `valid` gives; the two orders; and the per-file cap of byFile.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ConfigIssue, formatIssue } from '../../src/core/errors.js';
import { MAX_ISSUES_PER_FILE, byFile, checkFile, type FileKind, type Rule } from '../../src/definitions/kernel.js';
import { parseYamlFile, type Parsed } from '../../src/definitions/yaml-file.js';
import { testTmp } from '../helpers/tmp.js';

const dir = testTmp('kernel');
let n = 0;
function parsed(text: string): Parsed {
  const file = path.join(dir, `f${++n}.yaml`);
  writeFileSync(file, text);
  const issues: ConfigIssue[] = [];
  const p = parseYamlFile(file, issues);
  expect(issues).toEqual([]);
  return p!;
}

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z]+$' },
    size: { type: 'integer', minimum: 1 },
    tags: { type: 'array', items: { type: 'string' } },
    step: { type: 'object', minProperties: 1, maxProperties: 1, errorMessage: 'one action per step', properties: { a: { type: 'string' }, b: { type: 'string' } }, additionalProperties: false },
    items: { type: 'array', items: { type: 'object', properties: { x: { type: 'string' }, y: { type: 'string' } }, additionalProperties: false } },
  },
} as const;

const rules: Rule<{ short: number }>[] = [
  { at: '.name', type: 'string', replaces: ['pattern'], check: (v) => /^[a-z]+$/.test(v), message: (v) => `'${v}' is not lower-case letters` },
  { at: '.name', type: 'string', check: (v, cx) => v.length <= cx.short, message: (v, cx) => `'${v}' is longer than ${cx.short}` },
  { at: '.size', type: 'any', replaces: ['type', 'minimum'], problem: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 ? undefined : 'must be a count') },
  { at: '.tags[]', type: 'string', check: (v) => v !== 'bad', message: () => 'a bad tag' },
  { at: '', reportAt: '.tags', type: 'mapping', check: (d) => !(d.name === 'x' && d.tags !== undefined), message: () => 'x has no tags' },
  { at: '.items[]', each: [{ at: '.x', type: 'string', check: (v) => v !== 'no', message: () => 'x says no' }, { at: '.y', type: 'string', check: (v) => v !== 'no', message: () => 'y says no' }] },
];

const kind: FileKind<{ short: number }> = { schema, rules };
const say = (issues: ConfigIssue[]) => issues.map((i) => formatIssue({ ...i, file: 'f' }));

describe('the validation kernel', () => {
  it('reports every problem at once, schema first, then the rules in table order, each with line and key path', () => {
    const c = checkFile(kind, parsed('name: Abcdef\nsize: 0\ncolour: 1\ntags: [ok, bad]\n'), { short: 3 });
    expect(say(c.issues)).toEqual([
      "f:3: .colour: unknown key 'colour' (allowed: name, size, tags, step, items)",
      "f:1: .name: 'Abcdef' is not lower-case letters",
      "f:1: .name: 'Abcdef' is longer than 3",
      'f:2: .size: must be a count',
      'f:4: .tags[1]: a bad tag',
    ]);
  });

  it('a rule reads only values of its type: a wrong type is the schema\'s, said once', () => {
    const c = checkFile(kind, parsed('name: 5\ntags: [1, bad]\n'), { short: 3 });
    expect(say(c.issues)).toEqual(['f:1: .name: must be a string, got number 5', 'f:2: .tags[0]: must be a string, got number 1', 'f:2: .tags[1]: a bad tag']);
  });

  it("errorMessage words a node's own constraints, not its type or keys", () => {
    expect(say(checkFile(kind, parsed('step: {a: x, b: y}\n'), { short: 9 }).issues)).toEqual(['f:1: .step: one action per step']);
    expect(say(checkFile(kind, parsed('step: {}\n'), { short: 9 }).issues)).toEqual(['f:1: .step: one action per step']);
    expect(say(checkFile(kind, parsed('step: [a]\n'), { short: 9 }).issues)).toEqual(['f:1: .step: must be a mapping, got a list']);
    expect(say(checkFile(kind, parsed('step: {c: 1}\n'), { short: 9 }).issues)).toEqual(["f:1: .step.c: unknown key 'c' (allowed: a, b)"]);
  });

  it('each: the rules of one item together, item by item', () => {
    const c = checkFile(kind, parsed('items: [{x: no, y: no}, {x: no, y: no}]\n'), { short: 9 });
    expect(say(c.issues)).toEqual(['f:1: .items[0].x: x says no', 'f:1: .items[0].y: y says no', 'f:1: .items[1].x: x says no', 'f:1: .items[1].y: y says no']);
  });

  it('reportAt: a rule on the whole file reports at the key it is about', () => {
    expect(say(checkFile(kind, parsed('name: x\ntags: []\n'), { short: 9 }).issues)).toEqual(['f:2: .tags: x has no tags']);
  });

  it('valid: a value given with no problem at it or inside it', () => {
    const c = checkFile(kind, parsed('name: abc\nsize: 0\ntags: [ok, bad]\nitems: [{x: a}]\n'), { short: 9 });
    expect(c.valid(['name'])).toBe('abc');
    expect(c.valid(['size'])).toBeUndefined();
    expect(c.valid(['tags'])).toBeUndefined();
    expect(c.valid(['tags', 0])).toBe('ok');
    expect(c.valid(['items', 0, 'x'])).toBe('a');
    expect(c.valid(['step'])).toBeUndefined();
  });

  it("order 'keys': the order of the keys in the file; suggestKeys false: no 'did you mean'", () => {
    const c = checkFile({ ...kind, order: 'keys', suggestKeys: false }, parsed('tags: [bad]\nnam: x\nname: Q\n'), { short: 9 });
    expect(say(c.issues)).toEqual(["f:1: .tags[0]: a bad tag", "f:2: .nam: unknown key 'nam' (allowed: name, size, tags, step, items)", "f:3: .name: 'Q' is not lower-case letters"]);
    expect(say(checkFile(kind, parsed('nam: x\n'), { short: 9 }).issues)).toEqual(["f:1: .nam: unknown key 'nam' (did you mean 'name'? allowed: name, size, tags, step, items)"]);
  });

  it('a rule with a key path it cannot read is a programming error, found on first use', () => {
    expect(() => checkFile({ ...kind, rules: [{ at: 'name', type: 'string', check: () => true, message: () => '' }] }, parsed('name: a\n'), { short: 1 })).toThrow(/bad key path pattern/);
  });

  it('byFile: files in the order first named, each by line, at most MAX_ISSUES_PER_FILE and a count of the rest', () => {
    const many = Array.from({ length: MAX_ISSUES_PER_FILE + 2 }, (_, i) => ({ file: 'b', path: '', line: MAX_ISSUES_PER_FILE + 2 - i, message: `m${i}` }));
    const out = byFile([{ file: 'a', path: '', line: 2, message: 'a2' }, ...many, { file: 'a', path: '', line: 1, message: 'a1' }]);
    expect(out.map((i) => i.message).slice(0, 3)).toEqual(['a1', 'a2', `m${MAX_ISSUES_PER_FILE + 1}`]);
    expect(out).toHaveLength(2 + MAX_ISSUES_PER_FILE + 1);
    expect(out.at(-1)!.message).toBe(`and 2 more problems in this file (the first ${MAX_ISSUES_PER_FILE} are shown)`);
  });
});
