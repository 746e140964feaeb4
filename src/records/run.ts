// One nightly run or promotion as the repository's history keeps it (repository/history.ts), for
// the status page: passed or not, the time of each stage, what it published and what its checks
// found.

export interface RunRecord {
  kind: 'nightly' | 'promote';
  set: string;
  started: string;
  finished: string;
  ok: boolean;
  /** The stage that failed (nightly), or 'gate' (a refused promotion). */
  failedStage?: string;
  /** The first line of what went wrong. */
  error?: string;
  /** Seconds per stage, in the order they ran. */
  stages: { name: string; seconds: number }[];
  /** The snapshot served after the run. */
  snapshot?: string;
  /** The pipeline run a promotion judged, and what its gate records said. */
  run?: string;
  gates?: { layer: string; state: string }[];
  /** Packages the run added to the repository. */
  added?: number;
  /** Builds a nightly checked by rebuilding them (--reproduce), and the outcome. */
  reproduced?: { layer: string; status: 'identical' | 'different' | 'not-checked'; differing: number }[];
}
