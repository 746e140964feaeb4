// The job graph as a GitHub Actions workflow. Pure: the same graph and settings give the same bytes.
//
// - Job ids must be letters, digits, '-' and '_', starting with a letter or '_'; they are made from
//   the job's kind, set and layer so that different jobs can never get the same id (githubId).
//   What people see is `name:` (`debian12 engine-installed`).
// - A job with `needs:` runs only when every job it needs succeeded (no `if: always()` anywhere),
//   which is the promotion's gate. GitHub documents no limit on `needs:`, so there are no gate jobs.
// - Each promotion has `concurrency` with cancel-in-progress false. GitHub keeps at most one
//   running and ONE pending job per concurrency group and cancels an older pending one when
//   another arrives: with one group for every set, the third set's promotion in a run would
//   cancel the second's. So the group is per set (ost-images-production-<set>): a set's
//   promotions run one at a time, a newer run's replacing an older one still waiting, and the
//   production repository's own lock serializes the sets' promotions against each other.
import { Document } from 'yaml';
import { commandOf, jobName, type CiJob, type JobGraph } from './pipeline.js';
import type { CiSettings } from './settings.js';
import { SET_COMMENT, headerLines, mapOf, quoted, render, type Entry, type Origin } from './yaml-out.js';
import { variableEntries } from './variables.js';
import { PRODUCTION_GROUP } from './gitlab.js';

export const GITHUB_FILE = '.github/workflows/ost-images-nightly.yml';
export const CHECKOUT_ACTION = 'actions/checkout@v4';

/**
 * A name as part of a job id: [a-z0-9-] kept, any other character (names may hold . _ +) as
 * `_` and two hex digits. Injective, and never produces `__`, which separates the parts.
 */
function idPart(name: string): string {
  return name.replace(/[^a-z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** `layer__debian12__engine-installed`, `boot__debian12__engine-installed-flat`, `promote__debian12`. */
export function githubId(job: CiJob): string {
  return [job.kind, job.set, ...(job.layer !== undefined ? [job.layer] : []), ...(job.gate !== undefined ? [String(job.gate)] : [])].map(idPart).join('__');
}

const STEP_NAME: Record<CiJob['kind'], string> = { layer: 'build, package and stage', boot: 'boot test', gate: 'gate', promote: 'promote' };

export function renderGithub(g: JobGraph, settings: CiSettings, origin: Origin): string {
  const ids = new Map(g.jobs.map((j) => [j.id, githubId(j)]));
  const doc = new Document();
  const jobs: Entry[] = g.jobs.map((job, i) => {
    const steps: unknown[] = [{ uses: CHECKOUT_ACTION }];
    if (settings.setup) steps.push({ name: 'setup', run: settings.setup });
    steps.push({ name: STEP_NAME[job.kind], run: commandOf(job, g.layersDir) });
    const e: Entry[] = [{ key: 'name', value: jobName(job) }];
    if (job.needs.length > 0) e.push({ key: 'needs', value: job.needs.map((n) => ids.get(n)!), flow: job.needs.length === 1 });
    e.push({ key: 'runs-on', value: settings.github.runsOn, flow: true });
    if (job.kind === 'promote') e.push({ key: 'concurrency', value: { group: `${PRODUCTION_GROUP}-${job.set}`, 'cancel-in-progress': false } });
    e.push({ key: 'steps', value: steps });
    const firstOfSet = g.jobs.findIndex((j) => j.set === job.set) === i;
    return {
      key: ids.get(job.id)!,
      value: mapOf(doc, e),
      spaceBefore: i > 0,
      comment: firstOfSet ? SET_COMMENT(job.set) : undefined,
    };
  });
  doc.contents = mapOf(doc, [
    { key: 'name', value: 'ost-images nightly' },
    {
      key: 'on',
      // GitHub reads the schedule in UTC, from the workflow file on the default branch.
      value: mapOf(doc, [
        { key: 'schedule', value: [mapOf(doc, [{ key: 'cron', value: quoted(settings.github.schedule) }])] },
        { key: 'workflow_dispatch', value: null },
      ]),
      spaceBefore: true,
    },
    { key: 'permissions', value: { contents: 'read' }, comment: 'The jobs only check the repository out; staging and production are written by the runners.', spaceBefore: true },
    { key: 'env', value: mapOf(doc, variableEntries('${{ github.run_id }}', settings)), comment: "What the jobs' commands read: how to run ost-images, where staging and production are.", spaceBefore: true },
    { key: 'jobs', value: mapOf(doc, jobs), spaceBefore: true },
  ]);
  return render(doc, headerLines('github', g.sets, origin));
}
