// The validation kernel of every definition file: set.yaml, layer.yaml and ci.yaml. A kind of file
// is a JSON Schema (structure, types, unknown keys: the very schema `ost-images schema` exports for
// editors) and a table of rules, one per key path, for what a schema cannot say (names, URLs, files
// in the layer folder, values that depend on another file). Given a file that reads
// (yaml-file.ts), the kernel runs both and reports every problem at once, each located by file,
// line and key path, with the value quoted.
//
// How the two halves share the work, so that every problem is reported once and none hides another:
// - The schema runs first, on the whole file. Its errors are said in words a person can act on:
//   an unknown key with the allowed ones (and the nearest, when it looks like a typo), a type as
//   "a list" or "a mapping" with the value given.
// - Then the rules, in table order. A rule reads only values of its type and never an absent one:
//   a value of the wrong type is the schema's to report, so a type error in one key does not hide
//   a bad URL in another, and no value gets two messages.
// - A rule that says more than the schema can about its key `replaces` the schema's keywords
//   there: the exported schema keeps them (an editor flags `keep: 0` as you type), and the
//   message is the rule's ("a positive whole number (1 to 1000)", not "must be >= 1").
// - A schema node may carry `errorMessage`: the words for a value that breaks one of its own
//   constraints other than its type and keys (a step with two actions). Editors show it too.
// - Rules in an `each` group run item by item (every rule of item 0, then of item 1): a step's
//   problems are listed together, as a person reads the file.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { type ConfigIssue, describeValue, quote } from '../core/errors.js';
import { formatPath, type Parsed, type Seg } from './yaml-file.js';

export type { Seg };
export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A JSON Schema (draft-07), as the schema modules write them. */
export type JsonSchema = Readonly<Record<string, unknown>>;

interface RuleCommon {
  /**
   * The key path the rule checks, relative to its group: `.distro.version`, `.steps[]` (every item
   * of a list), `.repos{}` (every entry of a mapping), '' (the file, or the group's value itself).
   */
  at: string;
  /** Schema keywords at this key path whose errors the rule reports in its own words instead. */
  replaces?: readonly string[];
  /** Where the problem is reported, below `at`, when that is not `at` itself: `.base` (keys only). */
  reportAt?: string;
}

/** What a rule says about one value: a check and its message, or a problem (several possible messages). */
type Says<C, V> =
  | { check: (value: V, cx: C, at: Seg[]) => boolean; message: (value: V, cx: C, at: Seg[]) => string }
  | { problem: (value: V, cx: C, at: Seg[]) => string | undefined };

/** A rule: a key path, the type of value it reads, a check and its message. */
export type Rule<C> =
  | (RuleCommon & { type: 'string' } & Says<C, string>)
  | (RuleCommon & { type: 'mapping' } & Says<C, Obj>)
  | (RuleCommon & { type: 'list' } & (Says<C, unknown[]> | { items: (list: unknown[], cx: C) => (string | undefined)[] }))
  | (RuleCommon & { type: 'any' } & Says<C, unknown>)
  | (RuleCommon & { each: Rule<C>[] });

/** One kind of definition file: its schema and its rules. */
export interface FileKind<C> {
  schema: JsonSchema;
  rules: Rule<C>[];
  /** An unknown key's message names the nearest allowed key, when one is close (default true). */
  suggestKeys?: boolean;
  /**
   * The order problems are listed in: 'checks' (the schema's, then the rules' in table order; a
   * layer set's loader then sorts them by line, across its files), or 'keys' (the order of the
   * keys in the file, one pass over it).
   */
  order?: 'checks' | 'keys';
}

/** A problem before it is given its line: the key path as segments. */
interface Located {
  segs: Seg[];
  /** Located at the key itself rather than its value (an unknown key). */
  key?: boolean;
  message: string;
}

/** The outcome of checking one file. */
export interface Checked {
  /** Every problem, located, in the kind's order. */
  issues: ConfigIssue[];
  /** The value at a key path when the file gives it and no problem was found at it or inside it. */
  valid(segs: Seg[]): unknown;
}

// verbose: error objects carry their schema, from which 'unknown key' lists the allowed keys.
// validateSchema: the schemas are fixed; checking them against the JSON Schema meta-schema on
// every start cost a tenth of a build that reuses every layer, so a unit test does it instead.
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true, validateSchema: false });
// An annotation, read by shapeIssues and by editors; it validates nothing itself.
ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
// Compiled on first use: a command that validates nothing pays nothing.
const compiled = new WeakMap<JsonSchema, ValidateFunction>();
function validatorOf(schema: JsonSchema): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) compiled.set(schema, (v = ajv.compile(schema)));
  return v;
}

/** Checks one file that reads against a kind: the schema, then the rules. */
export function checkFile<C>(kind: FileKind<C>, p: Parsed, cx: C): Checked {
  const validate = validatorOf(kind.schema);
  const found: Located[] = [];
  const replaced = replacedKeywords(kind.rules);
  if (!validate(p.data)) found.push(...shapeIssues(p.data, validate.errors ?? [], replaced, kind.suggestKeys ?? true));
  runRules(kind.rules, p.data, [], cx, found);
  const ordered = kind.order === 'keys' ? inKeyOrder(p.data, found) : found;
  return {
    issues: ordered.map((l) => located(p, l.segs, l.message, l.key)),
    valid: (segs) => {
      const hit = found.some((l) => segs.every((s, i) => i < l.segs.length && String(l.segs[i]) === String(s)));
      return hit ? undefined : valueAt(p.data, segs);
    },
  };
}

/** A problem at a key path of a file, with the line the file has there. */
export function located(p: Parsed, segs: Seg[], message: string, key = false): ConfigIssue {
  return { file: p.file, path: formatPath(segs), line: p.lineOf(segs, key), message };
}

/** Collects problems for one file, located by key path (the line comes from the file). */
export class FileIssues {
  constructor(
    readonly p: Parsed,
    private readonly sink: ConfigIssue[],
  ) {}
  add(segs: Seg[], message: string): void {
    this.sink.push(located(this.p, segs, message));
  }
}

// --- key paths -----------------------------------------------------------------------------

/** A step of a key path pattern: a key, every item of a list, every entry of a mapping. */
type Step = { key: string } | { items: true } | { entries: true };

const patterns = new Map<string, Step[]>();
function parsePattern(at: string): Step[] {
  let steps = patterns.get(at);
  if (steps) return steps;
  steps = [];
  const re = /\.([A-Za-z0-9_]+)|\[\]|\{\}/y;
  let read = 0;
  for (let m = re.exec(at); m; m = re.exec(at)) {
    steps.push(m[1] !== undefined ? { key: m[1] } : m[0] === '[]' ? { items: true } : { entries: true });
    read = re.lastIndex;
  }
  if (read !== at.length) throw new Error(`bad key path pattern in a rule: ${at}`);
  patterns.set(at, steps);
  return steps;
}

/** The keys of a key path without wildcards. */
function keysOf(at: string): string[] {
  return parsePattern(at).map((step) => {
    if (!('key' in step)) throw new Error(`a rule reports at a key path with a wildcard: ${at}`);
    return step.key;
  });
}

/** The values a pattern names under `value` (at `segs`), with their key paths, in file order. */
function matches(value: unknown, segs: Seg[], steps: Step[]): [unknown, Seg[]][] {
  let out: [unknown, Seg[]][] = [[value, segs]];
  for (const step of steps) {
    const next: [unknown, Seg[]][] = [];
    for (const [v, at] of out) {
      if ('key' in step) {
        if (isObj(v) && Object.hasOwn(v, step.key)) next.push([v[step.key], [...at, step.key]]);
      } else if ('items' in step) {
        if (Array.isArray(v)) v.forEach((x, i) => next.push([x, [...at, i]]));
      } else if (isObj(v)) {
        for (const [k, x] of Object.entries(v)) next.push([x, [...at, k]]);
      }
    }
    out = next;
  }
  return out;
}

/** Whether concrete key path `segs` is one a pattern (as steps) names. */
function named(steps: Step[], segs: Seg[]): boolean {
  return (
    steps.length === segs.length &&
    steps.every((step, i) => ('key' in step ? String(segs[i]) === step.key : 'items' in step ? typeof segs[i] === 'number' : true))
  );
}

export function valueAt(data: unknown, segs: Seg[]): unknown {
  let v: unknown = data;
  for (const s of segs) v = v && typeof v === 'object' && Object.hasOwn(v, s) ? (v as Obj)[s as string] : undefined;
  return v;
}

// --- rules ---------------------------------------------------------------------------------

function runRules<C>(rules: Rule<C>[], base: unknown, baseSegs: Seg[], cx: C, found: Located[]): void {
  for (const rule of rules) {
    for (const [value, at] of matches(base, baseSegs, parsePattern(rule.at))) {
      if (value === undefined) continue;
      if ('each' in rule) {
        runRules(rule.each, value, at, cx, found);
        continue;
      }
      const fits =
        rule.type === 'string' ? typeof value === 'string' : rule.type === 'mapping' ? isObj(value) : rule.type === 'list' ? Array.isArray(value) : true;
      if (!fits) continue;
      if ('items' in rule) {
        rule.items(value as unknown[], cx).forEach((message, i) => message !== undefined && found.push({ segs: [...at, i], message }));
        continue;
      }
      // The union's members differ only in the value's type, which `fits` established.
      const says = rule as Says<C, unknown>;
      const message = 'problem' in says ? says.problem(value, cx, at) : says.check(value, cx, at) ? undefined : says.message(value, cx, at);
      if (message !== undefined) found.push({ segs: rule.reportAt ? [...at, ...keysOf(rule.reportAt)] : at, message });
    }
  }
}

/** Every rule's replaced keywords, with the full pattern of the key path they apply at. */
function replacedKeywords<C>(rules: Rule<C>[], prefix: Step[] = [], out: [Step[], readonly string[]][] = []): [Step[], readonly string[]][] {
  for (const rule of rules) {
    const steps = [...prefix, ...parsePattern(rule.at)];
    if (rule.replaces) out.push([steps, rule.replaces]);
    if ('each' in rule) replacedKeywords(rule.each, steps, out);
  }
  return out;
}

// --- the schema's errors, in words ------------------------------------------------------------

function segsOf(instancePath: string): Seg[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

/** Levenshtein distance, for "did you mean" (keys are short; long ones are not compared). */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || b.length > 64) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Keywords about a value's type and keys, which have their own messages even where a node has errorMessage. */
const OWN_MESSAGES = new Set(['type', 'additionalProperties', 'required']);

/** Turns ajv's errors into messages a person can act on, each with its key path. */
function shapeIssues(data: unknown, errors: ErrorObject[], replaced: [Step[], readonly string[]][], suggest: boolean): Located[] {
  const out: Located[] = [];
  for (const e of errors) {
    const segs = segsOf(e.instancePath);
    if (replaced.some(([steps, keywords]) => keywords.includes(e.keyword) && named(steps, segs))) continue;
    const value = valueAt(data, segs);
    const errorMessage = (e.parentSchema as { errorMessage?: string } | undefined)?.errorMessage;
    let at = segs;
    let message: string;
    let atKey = false;
    switch (errorMessage !== undefined && !OWN_MESSAGES.has(e.keyword) ? 'errorMessage' : e.keyword) {
      case 'errorMessage':
        message = errorMessage!;
        break;
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        at = [...segs, extra];
        atKey = true;
        const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
        const near = suggest ? allowed.find((a) => editDistance(a, extra) <= Math.min(2, a.length / 3)) : undefined;
        message = `unknown key ${quote(extra)} (${near ? `did you mean '${near}'? ` : ''}allowed: ${allowed.join(', ')})`;
        break;
      }
      case 'required':
        message = `missing required key '${(e.params as { missingProperty: string }).missingProperty}'`;
        break;
      case 'type':
        message = `must be ${e.params.type === 'array' ? 'a list' : e.params.type === 'object' ? 'a mapping' : `a ${e.params.type}`}, got ${describeValue(value)}`;
        break;
      case 'enum':
        message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((x) => JSON.stringify(x)).join(', ')}, got ${describeValue(value)}`;
        break;
      case 'const':
        message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}, got ${describeValue(value)}`;
        break;
      case 'minItems':
      case 'minLength':
        message = 'must not be empty';
        break;
      case 'minimum':
        message = `must be at least ${(e.params as { limit: number }).limit}, got ${describeValue(value)}`;
        break;
      case 'maximum':
        message = `must be at most ${(e.params as { limit: number }).limit}, got ${describeValue(value)}`;
        break;
      case 'uniqueItems': {
        const { i, j } = e.params as { i: number; j: number };
        const item = (value as unknown[])[i];
        message = `lists ${typeof item === 'string' ? quote(item) : describeValue(item)} twice (items ${j} and ${i})`;
        break;
      }
      default:
        message = e.message ?? e.keyword;
    }
    out.push({ segs: at, key: atKey, message });
  }
  return out;
}

// --- order -------------------------------------------------------------------------------------

/** Problems in the order of the keys in the file (a key before what it holds), stable among equals. */
function inKeyOrder(data: unknown, found: Located[]): Located[] {
  const rank = new Map<string, number>();
  const id = (segs: Seg[]) => segs.map(String).join('\u0000');
  const walk = (v: unknown, segs: Seg[]): void => {
    if (!rank.has(id(segs))) rank.set(id(segs), rank.size);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...segs, i]));
    else if (isObj(v)) for (const [k, x] of Object.entries(v)) walk(x, [...segs, k]);
  };
  walk(data, []);
  const at = (l: Located) => rank.get(id(l.segs)) ?? rank.size;
  return [...found].sort((a, b) => at(a) - at(b));
}

/** Problems listed per file; a file with more (a binary or a runaway file) gets a count of the rest. */
export const MAX_ISSUES_PER_FILE = 20;

/**
 * Problems grouped by file (in the order files were first named), each file's by line, read top to
 * bottom (problems on one line in the order they were found); at most MAX_ISSUES_PER_FILE per file.
 */
export function byFile(issues: ConfigIssue[]): ConfigIssue[] {
  const groups = new Map<string, ConfigIssue[]>();
  for (const i of issues) {
    const g = groups.get(i.file);
    if (g) g.push(i);
    else groups.set(i.file, [i]);
  }
  return [...groups.values()].flatMap((g) => {
    const sorted = [...g].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    if (sorted.length <= MAX_ISSUES_PER_FILE) return sorted;
    const rest = sorted.length - MAX_ISSUES_PER_FILE;
    return [...sorted.slice(0, MAX_ISSUES_PER_FILE), { file: g[0]!.file, path: '', message: `and ${rest} more problem${rest === 1 ? '' : 's'} in this file (the first ${MAX_ISSUES_PER_FILE} are shown)` }];
  });
}
