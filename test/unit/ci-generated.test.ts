// The committed pipeline files cannot drift: .gitlab-ci.yml and the GitHub workflow must be what
// layers/ and ci.yaml generate now (a change to either without regenerating fails here), and the
// diff --check prints for a stale file.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../src/ci/diff.js';
import { DEFAULT_FILE, checkGenerated, generatePipeline } from '../../src/ci/generate.js';
import { DEFAULT_LAYERS_DIR, PROJECT_ROOT } from '../../src/core/paths.js';

describe('the committed pipeline files', () => {
  for (const engine of ['gitlab', 'github'] as const) {
    it(`${DEFAULT_FILE[engine]} is what \`ost-images ci ${engine}\` generates from layers/ and ci.yaml now`, () => {
      const file = path.join(PROJECT_ROOT, DEFAULT_FILE[engine]);
      const text = generatePipeline(engine, { layersDir: DEFAULT_LAYERS_DIR, overrides: {}, args: [] });
      const diff = checkGenerated(file, text);
      // On failure the diff says what changed; regenerate with `ost-images ci <engine> --out <file>`.
      expect(diff).toBe('');
      expect(readFileSync(file, 'utf8')).toBe(text);
    });
  }
});

describe('unified diff', () => {
  const before = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';

  it('equal texts: no diff', () => {
    expect(unifiedDiff(before, before, 'a', 'b')).toBe('');
  });

  it('a changed line, with three lines of context', () => {
    const after = before.replace('line 10\n', 'line ten\n');
    expect(unifiedDiff(before, after, 'old', 'new')).toBe(
      ['--- old', '+++ new', '@@ -7,7 +7,7 @@', ' line 7', ' line 8', ' line 9', '-line 10', '+line ten', ' line 11', ' line 12', ' line 13', ''].join('\n'),
    );
  });

  it('changes far apart are separate hunks; close ones share one (as diff -u makes them)', () => {
    const after = before.replace('line 2\n', '').replace('line 18\n', 'line 18\nnew 18b\n');
    const d = unifiedDiff(before, after, 'a', 'b');
    expect(d.split('\n').filter((l) => l.startsWith('@@'))).toEqual(['@@ -1,5 +1,4 @@', '@@ -16,5 +15,6 @@']);
    const close = before.replace('line 5\n', 'five\n').replace('line 9\n', 'nine\n');
    expect(unifiedDiff(before, close, 'a', 'b').split('\n').filter((l) => l.startsWith('@@'))).toEqual(['@@ -2,11 +2,11 @@']);
  });

  it('lines added at the end, to an empty file, and a missing final newline', () => {
    expect(unifiedDiff('a\n', 'a\nb\n', 'x', 'y')).toBe('--- x\n+++ y\n@@ -1 +1,2 @@\n a\n+b\n');
    expect(unifiedDiff('', 'a\n', 'x', 'y')).toBe('--- x\n+++ y\n@@ -0,0 +1 @@\n+a\n');
    expect(unifiedDiff('a\nb', 'a\nb\n', 'x', 'y')).toBe('--- x\n+++ y\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n');
  });

  it('agrees with diff -u on a reordered file', () => {
    const a = 'a\nb\nc\nd\ne\n';
    const b = 'a\nc\nb\nd\ne\nf\n';
    expect(unifiedDiff(a, b, 'x', 'y')).toBe('--- x\n+++ y\n@@ -1,5 +1,6 @@\n a\n-b\n c\n+b\n d\n e\n+f\n');
  });

  it('applied to the old text, it gives the new one (random texts)', () => {
    // A small deterministic generator: the same cases every run.
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const text = () => Array.from({ length: rand(30) }, () => `l${rand(6)}`).join('\n') + (rand(4) === 0 ? '' : '\n');
    for (let k = 0; k < 300; k++) {
      const [a, b] = [text(), text()];
      expect(applyDiff(a, unifiedDiff(a, b, 'a', 'b')), `${JSON.stringify(a)} -> ${JSON.stringify(b)}`).toBe(b);
    }
  });
});

/** Applies a unified diff (as unifiedDiff writes it) to `text`. */
function applyDiff(text: string, diff: string): string {
  if (diff === '') return text;
  const src = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const srcEol = text === '' || text.endsWith('\n');
  const out: string[] = [];
  let outEol = true;
  let at = 0;
  let last: ' ' | '-' | '+' = ' ';
  for (const line of diff.split('\n').slice(2, -1)) {
    const hunk = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@$/.exec(line);
    if (hunk) {
      const start = Number(hunk[2] === '0' ? hunk[1] : Number(hunk[1]) - 1);
      out.push(...src.slice(at, start));
      at = start;
    } else if (line === '\\ No newline at end of file') {
      if (last !== '-') outEol = false;
    } else {
      last = line[0] as ' ' | '-' | '+';
      if (last !== '+') expect(src[at++]).toBe(line.slice(1));
      if (last !== '-') out.push(line.slice(1));
    }
  }
  if (at < src.length) {
    out.push(...src.slice(at));
    outEol = srcEol;
  }
  return out.length === 0 ? '' : out.join('\n') + (outEol ? '\n' : '');
}
