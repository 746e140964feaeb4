// Handlebars, loaded when a template is first compiled rather than at start-up: loading it takes
// about 0.05 s of CPU, a tenth of a command that renders nothing (a build that reuses every
// layer, a set without kickstart bases). It is CommonJS, so it can be loaded synchronously, where it is needed.
import { createRequire } from 'node:module';

type Handlebars = typeof import('handlebars');

let loaded: Handlebars | undefined;

export function handlebars(): Handlebars {
  loaded ??= createRequire(import.meta.url)('handlebars') as Handlebars;
  return loaded;
}
