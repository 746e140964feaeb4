// The stage runner every job that reports stages shares (nightly, all): each stage is announced,
// timed (a stage run twice adds up) and, when it fails, remembered as the stage that failed; the
// error itself goes on unchanged, so exit codes stay the error's own. An error between two stages
// (bookkeeping after one finished) belongs to the stage that ran last.
import { log } from '../core/log.js';

export class StageRunner<S extends string> {
  readonly seconds: Partial<Record<S, number>> = {};
  /** The stage that failed, once one did. */
  failed?: S;
  /** The stage that started last. */
  last?: S;

  constructor(private readonly job: string) {}

  async run<T>(name: S, fn: () => Promise<T>): Promise<T> {
    this.last = name;
    const t0 = Date.now();
    log.info(`${this.job}: ${name}`);
    try {
      return await fn();
    } catch (err) {
      this.failed ??= name;
      throw err;
    } finally {
      this.seconds[name] = (this.seconds[name] ?? 0) + (Date.now() - t0) / 1000;
    }
  }

  /** The stage to blame for an error: the one that failed, else the one that ran last. */
  blame(fallback: S): S {
    return this.failed ?? this.last ?? fallback;
  }
}
