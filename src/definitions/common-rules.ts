// Rules more than one kind of definition file uses: free text that ends up in package metadata,
// URLs the set names, and Debian suite names (set.yaml's codename, a base's suites).
import { quote } from '../core/errors.js';
import { urlMessage } from '../input/urls.js';
import type { Rule } from './kernel.js';
import { DEB_SUITE, TEXT_CONTROL } from './names.js';

/** Free text that ends up in package metadata: no control characters (rpm would choke on them). */
export const textRule = <C>(at: string): Rule<C> => ({
  at,
  type: 'string',
  check: (v) => !TEXT_CONTROL.test(v),
  message: (v) => `${quote(v)} holds a control character`,
});

/** A URL the set names: well-formed http(s) or file (see input/urls.ts). */
export const urlRule = <C>(at: string): Rule<C> => ({ at, type: 'string', problem: (v) => urlMessage(v) });

/** A Debian suite name; it reaches mmdebstrap's command line, where '-' first would make an option. */
export const debSuiteRule = <C>(at: string): Rule<C> => ({
  at,
  type: 'string',
  replaces: ['pattern'],
  check: (v) => DEB_SUITE.test(v),
  message: (v) => `${quote(v)} is not a Debian suite name (lower-case letters, digits, . -)`,
});
