// Rules more than one kind of definition file uses: free text that ends up in package metadata,
// and URLs the set names.
import { quote } from '../core/errors.js';
import { urlMessage } from '../input/urls.js';
import type { Rule } from './kernel.js';
import { TEXT_CONTROL } from './names.js';

/** Free text that ends up in package metadata: no control characters (rpm would choke on them). */
export const textRule = <C>(at: string): Rule<C> => ({
  at,
  type: 'string',
  check: (v) => !TEXT_CONTROL.test(v),
  message: (v) => `${quote(v)} holds a control character`,
});

/** A URL the set names: well-formed http(s) or file (see input/urls.ts). */
export const urlRule = <C>(at: string): Rule<C> => ({ at, type: 'string', problem: (v) => urlMessage(v) });
