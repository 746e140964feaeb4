// The site's upload command (OST_IMAGES_UPLOAD): for runners that do not share the staging
// repository's file system, a command that receives the package files as its arguments and must
// make them appear in staging (e.g. a script that copies them to the staging host and publishes
// them there). It is the site's own shell text, so sh runs it with the files as its positional
// parameters, never spliced into the text (a file name cannot become shell syntax). A command
// that names them itself ("$@", "$1", ...) gets them that way; any other gets them appended:
// `scripts/site/upload-to-staging` runs as `scripts/site/upload-to-staging "$@"`.
import { run } from './run.js';

/** `$@`, `$*`, `$1`..`$9`, `${1}`, `${@}`...: the text uses the positional parameters itself. */
const USES_ARGS = /\$(\{)?[@*1-9]/;

export function uploadArgs(command: string, files: string[]): string[] {
  return ['-c', USES_ARGS.test(command) ? command : `${command} "$@"`, 'ost-images-upload', ...files];
}

export async function runUpload(command: string, files: string[], onLine?: (line: string) => void): Promise<void> {
  // The command needs the job's environment (credentials, an SSH agent, the CI's variables), which
  // the small default environment of run() leaves out on purpose.
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  await run('sh', uploadArgs(command, files), { env, onLine });
}
