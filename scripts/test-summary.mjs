// A vitest reporter: the closing lines of scripts/test.
//
//   failed: test/x.test.ts > a suite: beforeAll failed: <first line of the error>
//   failed: an error outside the tests: <first line>        (e.g. [vitest-worker]: Timeout calling "onTaskUpdate")
//   skipped: test/y.test.ts > a test that did not run      (each skipped test, named)
//   tests: 724 passed, 2 failed (1 test, 1 error outside the tests), 1 skipped
//
// A run is red for more than failed tests: a suite whose beforeAll (or a file whose import)
// failed reports its tests as skipped, not failed, and an error outside any test (an unhandled
// rejection, a worker too busy to answer vitest in time) only makes vitest exit 1. Each of those
// counts as a failure here, so the closing line never says "0 failed" on a red run; and every
// test that did not run is named, so a skip never goes unnoticed.
//
//   npx vitest run --reporter=default --reporter=./scripts/test-summary.mjs

const rel = (file) => (file ?? '').replace(`${process.cwd()}/`, '');
const firstLine = (err) => String(err?.message ?? err ?? '').split('\n')[0];

/**
 * The summary of a run from vitest's task tree (its files) and its unhandled errors: the lines to
 * print and the counts. Pure; the test feeds it a real run's tasks.
 */
export function summarize(files, errors = []) {
  const lines = [];
  const skipped = [];
  let passed = 0;
  let failedTests = 0;
  let failedSuites = 0;
  let notRun = 0;
  const walk = (task, names, broken) => {
    const here = task.type === 'suite' && task.filepath === undefined ? [...names, task.name] : names;
    if (task.type === 'test') {
      const state = task.result?.state;
      const full = [...names, task.name].join(' > ');
      if (state === 'pass') passed++;
      else if (state === 'fail') failedTests++;
      else if (broken) notRun++;
      else skipped.push(full);
      return;
    }
    // A suite (or file) that failed by itself, not through a test: a hook, or loading the file.
    const own = task.result?.state === 'fail' && (task.result.errors?.length ?? 0) > 0;
    if (own) {
      failedSuites++;
      lines.push(`failed: ${here.join(' > ')}: ${firstLine(task.result.errors[0])}`);
    }
    for (const t of task.tasks ?? []) walk(t, here, broken || own);
  };
  for (const f of files) walk(f, [rel(f.filepath ?? f.name)], false);
  for (const e of errors) lines.push(`failed: an error outside the tests: ${firstLine(e)}`);
  for (const s of skipped) lines.push(`skipped: ${s}`);
  const failed = failedTests + failedSuites + errors.length;
  const plural = (n, one) => `${n} ${one}${n === 1 ? '' : 's'}`;
  const parts = [
    failedTests && plural(failedTests, 'test'),
    failedSuites && `${plural(failedSuites, 'suite')} whose hooks or loading failed, ${plural(notRun, 'test')} in them not run`,
    errors.length && `${plural(errors.length, 'error')} outside the tests`,
  ].filter(Boolean);
  const detail = parts.length > 1 || (parts.length === 1 && !failedTests) ? ` (${parts.join('; ')})` : '';
  lines.push(`tests: ${passed} passed, ${failed} failed${detail}, ${skipped.length} skipped`);
  return { lines, passed, failed, skipped: skipped.length };
}

export default class TestSummary {
  onFinished(files = [], errors = []) {
    const s = summarize(files, errors);
    process.stdout.write(`${s.lines.join('\n')}\n`);
  }
}
