// Names users give that reach an external program's command line as words of their own (package
// names for dnf, destinations for rsync): a word starting with '-' would be read as an option
// (`install -- --installroot=X pkg` made dnf install elsewhere; `mirror --to -v` would become an
// rsync flag or, as a path, a folder named '-v'). Such words are refused here, and each tool
// module also puts them after `--` where the tool supports it.
import { UsageError, quote } from '../core/errors.js';

/** Why `word` cannot be passed as a name, or undefined. */
export function optionLikeProblem(word: string): string | undefined {
  if (word.startsWith('-')) return 'starts with \'-\', so a program would read it as an option';
  return undefined;
}

/**
 * Names given as arguments (`install PKG...`): each non-empty, one line, and not read as an
 * option by the program they are passed to. `what` names them in messages ('package name').
 */
export function checkNames(what: string, names: string[], hint = ''): string[] {
  const problems: string[] = [];
  for (const n of names) {
    if (n.trim() === '') problems.push(`${what} ${quote(n)} is empty`);
    else if (/[\u0000-\u001f\u007f]/.test(n)) problems.push(`${what} ${quote(n)} holds a control character`);
    else {
      const p = optionLikeProblem(n);
      if (p) problems.push(`${what} ${quote(n)} ${p}${hint}`);
    }
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return names;
}
