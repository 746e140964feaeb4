// A unified diff of two texts, line by line, for `ci ... --check`: what changed in a committed
// pipeline file against what would be generated now. Pure; no diff program needed.
//
// The common head and tail are set aside first (drift is usually a few local changes); the middle
// is diffed by longest common subsequence. A middle too large for that (a wrong file given to
// --check) is shown as removed and added whole: still a correct diff, only not a minimal one.

/** Cells of the LCS table beyond which the middle is not aligned line by line. */
const MAX_CELLS = 4_000_000;
const CONTEXT = 3;

type Op = { kind: ' ' | '-' | '+'; line: string };

/** Marks a last line without its newline, so that it differs from the same line with one. */
const NO_EOL = '\u0000no-eol';

function lines(text: string): string[] {
  if (text === '') return [];
  const l = text.split('\n');
  if (l.at(-1) === '') l.pop();
  else l[l.length - 1] += NO_EOL;
  return l;
}

function middleOps(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > MAX_CELLS) return [...a.map((line) => ({ kind: '-' as const, line })), ...b.map((line) => ({ kind: '+' as const, line }))];
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]! });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      // On a tie, remove first: the choice diff -u makes.
      ops.push({ kind: '-', line: a[i++]! });
    } else {
      ops.push({ kind: '+', line: b[j++]! });
    }
  }
  // Removals before additions within a run of changes, as diff -u shows them.
  const out: Op[] = [];
  for (let k = 0; k < ops.length; ) {
    if (ops[k]!.kind === ' ') {
      out.push(ops[k++]!);
      continue;
    }
    const run: Op[] = [];
    while (k < ops.length && ops[k]!.kind !== ' ') run.push(ops[k++]!);
    out.push(...run.filter((o) => o.kind === '-'), ...run.filter((o) => o.kind === '+'));
  }
  return out;
}

/** `diff -u` of `before` (labelled `fromLabel`) and `after`; '' when they are equal. */
export function unifiedDiff(before: string, after: string, fromLabel: string, toLabel: string): string {
  if (before === after) return '';
  const a = lines(before);
  const b = lines(after);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const ops: Op[] = [
    ...a.slice(0, head).map((line) => ({ kind: ' ' as const, line })),
    ...middleOps(a.slice(head, a.length - tail), b.slice(head, b.length - tail)),
    ...a.slice(a.length - tail).map((line) => ({ kind: ' ' as const, line })),
  ];
  const out = [`--- ${fromLabel}`, `+++ ${toLabel}`];
  // Hunks: changes with up to CONTEXT lines around them, merged when their context touches.
  const changed = ops.map((o, k) => (o.kind === ' ' ? -1 : k)).filter((k) => k >= 0);
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, changed[k]! - CONTEXT);
    let end = changed[k]!;
    while (k < changed.length && changed[k]! - CONTEXT <= end + CONTEXT + 1) end = changed[k++]!;
    const stop = Math.min(ops.length, end + CONTEXT + 1);
    const hunk = ops.slice(start, stop);
    const before1 = ops.slice(0, start).filter((o) => o.kind !== '+').length;
    const after1 = ops.slice(0, start).filter((o) => o.kind !== '-').length;
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${range(before1, aLen)} +${range(after1, bLen)} @@`);
    for (const o of hunk) {
      if (o.line.endsWith(NO_EOL)) out.push(`${o.kind}${o.line.slice(0, -NO_EOL.length)}`, '\\ No newline at end of file');
      else out.push(`${o.kind}${o.line}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** diff's `start,length` (a 0-length range starts at the line before). */
function range(before: number, len: number): string {
  const start = len === 0 ? before : before + 1;
  return len === 1 ? `${start}` : `${start},${len}`;
}
