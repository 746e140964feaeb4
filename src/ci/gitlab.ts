// The job graph as a GitLab CI pipeline (.gitlab-ci.yml). Pure: the same graph and settings give
// the same bytes.
//
// - A DAG through `needs:`, not stages: every job sits in GitLab's default stage and starts as soon
//   as the jobs it needs have passed (a root layer job has `needs: []` and starts at once).
// - GitLab refuses a `needs:` list of more than 50 entries (the default of its ci_max_needs
//   limit): a promotion needing more waits on gate jobs instead (pipeline.ts, limitNeeds).
// - Promotions share one `resource_group`: GitLab runs them one at a time, across pipelines too,
//   and queues the rest (it cancels none); the repository lock serializes them again underneath.
import { Document } from 'yaml';
import { UsageError } from '../core/errors.js';
import { commandOf, jobName, limitNeeds, type CiJob, type JobGraph } from './pipeline.js';
import type { CiSettings } from './settings.js';
import { SET_COMMENT, headerLines, mapOf, quotedList, render, type Entry, type Origin } from './yaml-out.js';
import { variableEntries } from './variables.js';

export const GITLAB_MAX_NEEDS = 50;
export const GITLAB_FILE = '.gitlab-ci.yml';
export const PRODUCTION_GROUP = 'ost-images-production';

/**
 * A variable's value as GitLab must be given it: GitLab expands `$NAME` in variables, which would
 * rewrite a site's upload command (`... "$1"`) before the job ever sees it; `expand: false` keeps
 * it as written. Only OST_IMAGES_RUN is meant to be expanded ($CI_PIPELINE_ID).
 */
function gitlabValue(name: string, value: string): unknown {
  return name !== 'OST_IMAGES_RUN' && value.includes('$') ? { value, expand: false } : value;
}

export function renderGitlab(graph: JobGraph, settings: CiSettings, origin: Origin): string {
  const g = limitNeeds(graph, GITLAB_MAX_NEEDS);
  const names = new Map(g.jobs.map((j) => [j.id, jobName(j)]));
  // Layer names hold no space, so only a layer named 'promote' can take another job's name.
  const seen = new Map<string, CiJob>();
  for (const j of g.jobs) {
    const other = seen.get(names.get(j.id)!);
    if (other) {
      const layer = (other.kind === 'layer' ? other : j).layer;
      throw new UsageError(`set '${j.set}': the job of layer '${layer}' would be named '${names.get(j.id)}', like the set's ${other.kind === 'layer' ? j.kind : other.kind} job; rename the layer`);
    }
    seen.set(names.get(j.id)!, j);
  }

  const doc = new Document();
  const top: Entry[] = [
    {
      key: 'variables',
      value: mapOf(doc, variableEntries('$CI_PIPELINE_ID', settings, gitlabValue)),
      comment: "What the jobs' commands read: how to run ost-images, where staging and production are.",
    },
    {
      key: 'workflow',
      // A push (or a merge request) must not build and promote: only a schedule (CI/CD > Schedules,
      // where GitLab keeps a pipeline's timing) or a pipeline started by hand or through the API.
      value: { rules: [{ if: '$CI_PIPELINE_SOURCE == "schedule"' }, { if: '$CI_PIPELINE_SOURCE == "web"' }, { if: '$CI_PIPELINE_SOURCE == "api"' }] },
      comment: 'Only scheduled pipelines and those started by hand or through the API run the nightly.',
      spaceBefore: true,
    },
  ];
  const defaults: Entry[] = [];
  if (settings.gitlab.tags.length > 0) defaults.push({ key: 'tags', value: settings.gitlab.tags, flow: true });
  if (settings.setup) defaults.push({ key: 'before_script', value: [settings.setup] });
  if (defaults.length > 0) top.push({ key: 'default', value: mapOf(doc, defaults), comment: 'Every job: on these runners, after the setup command.', spaceBefore: true });

  for (const job of g.jobs) {
    const e: Entry[] = [{ key: 'needs', value: job.needs.length === 0 ? [] : quotedList(job.needs.map((n) => names.get(n)!)) }];
    if (job.kind === 'gate') {
      // Nothing to set up: it only waits for its needs.
      if (settings.setup) e.push({ key: 'before_script', value: [] });
      e.push({ key: 'script', value: ['echo every job this gate needs has passed'] });
    } else {
      if (job.kind === 'promote') e.push({ key: 'resource_group', value: PRODUCTION_GROUP });
      e.push({ key: 'script', value: [commandOf(job, g.layersDir)] });
    }
    top.push({ key: names.get(job.id)!, value: mapOf(doc, e), quoteKey: true, spaceBefore: true, comment: jobComment(job, g) });
  }
  doc.contents = mapOf(doc, top);
  return render(doc, headerLines('gitlab', g.sets, origin));
}

/** The one comment a set's jobs get: above its first job, and above a promotion that waits on gates. */
function jobComment(job: CiJob, g: JobGraph): string | undefined {
  const first = g.jobs.find((j) => j.set === job.set);
  if (first === job) return SET_COMMENT(job.set);
  if (job.kind === 'gate' && job.gate === 1) return `GitLab allows at most ${GITLAB_MAX_NEEDS} needs per job: the promotion waits on gates\nthat each wait on at most ${GITLAB_MAX_NEEDS} jobs.`;
  return undefined;
}
