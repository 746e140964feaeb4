// `ci gitlab` / `ci github`: load the selected sets and the site settings, render, and either
// write the result (atomically), print it, or compare it with a committed file (--check).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { listSets, loadLayerSet } from '../definitions/load.js';
import { StepError, UsageError, quote } from '../core/errors.js';
import { fsError } from '../input/paths.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { DEFAULT_LAYERS_DIR, PROJECT_ROOT } from '../core/paths.js';
import { unifiedDiff } from './diff.js';
import { GITHUB_FILE, renderGithub } from './github.js';
import { GITLAB_FILE, renderGitlab } from './gitlab.js';
import { jobGraph } from './pipeline.js';
import { CONFIG_FILE, readCiConfig, resolveCiSettings, type CiOverrides, type Engine } from './settings.js';
import { shellWord } from './yaml-out.js';

export const DEFAULT_CONFIG = path.join(PROJECT_ROOT, CONFIG_FILE);
export const DEFAULT_FILE: Record<Engine, string> = { gitlab: GITLAB_FILE, github: GITHUB_FILE };

export interface GenerateOptions {
  layersDir: string;
  /** Sets to include; every set under layersDir when absent. */
  sets?: string[];
  /** A settings file; DEFAULT_CONFIG when it exists, else the built-in settings. */
  config?: string;
  /** Settings given as options; they override the file. */
  overrides: CiOverrides;
  /** The options as given that shape the output, for the file's header (regenerate/check commands). */
  args: string[];
}

/** The pipeline text for `engine`. Throws ConfigError/UsageError (exit 2) on bad sets or settings. */
export function generatePipeline(engine: Engine, o: GenerateOptions): string {
  // Sorted either way: the order sets are named in does not change the file.
  const names = o.sets ? [...new Set(o.sets)].sort() : listSets(o.layersDir);
  if (names.length === 0) throw new UsageError(`no layer sets in ${quote(o.layersDir)}`);
  const configFile = o.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  const file = configFile ? readCiConfig(configFile, engine) : undefined;
  const settings = resolveCiSettings(engine, file, o.overrides);
  // A layers directory given (as typed, like the header's --layers-dir) goes into the jobs' commands.
  const graph = jobGraph(names.map((n) => loadLayerSet(o.layersDir, n)), o.layersDir !== DEFAULT_LAYERS_DIR ? o.layersDir : undefined);
  const origin = { file: DEFAULT_FILE[engine], args: o.args };
  return engine === 'gitlab' ? renderGitlab(graph, settings, origin) : renderGithub(graph, settings, origin);
}

/** Writes `text` to `file` so that a reader (or a crash) never sees half of it. */
export function writeGenerated(file: string, text: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, text);
}

/**
 * Compares a committed file with what would be generated now. Returns the diff ('' when equal);
 * a missing file is bad input (UsageError, exit 2).
 */
export function checkGenerated(file: string, text: string): string {
  let committed: string;
  try {
    committed = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`cannot check ${quote(file)}: no such file`);
    throw fsError('--check', file, err) ?? err;
  }
  return unifiedDiff(committed, text, file, `${file} (as generated now)`);
}

/** The failure --check reports after printing the diff (exit 1). */
export function staleError(engine: Engine, file: string, args: string[]): StepError {
  const cmd = ['ost-images', 'ci', engine, ...args, '--out', file].map(shellWord).join(' ');
  return new StepError(`${file} is stale: it differs from what layers/ and the site settings generate now (diff above); regenerate it with: ${cmd}`);
}
