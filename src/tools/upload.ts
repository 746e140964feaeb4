// The site's upload command (OST_IMAGES_UPLOAD): for runners that do not share the staging
// repository's file system, a command that receives the package files as its arguments and must
// make them appear in staging (e.g. a script that copies them to the staging host and publishes
// them there). It is the site's own shell text, so sh runs it, with the files appended as "$@"
// (never spliced into the text: a file name cannot become shell syntax).
import { run } from './run.js';

export function uploadArgs(command: string, files: string[]): string[] {
  return ['-c', `${command} "$@"`, 'ost-images-upload', ...files];
}

export async function runUpload(command: string, files: string[], onLine?: (line: string) => void): Promise<void> {
  // The command needs the job's environment (credentials, an SSH agent, the CI's variables), which
  // the small default environment of run() leaves out on purpose.
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  await run('sh', uploadArgs(command, files), { env, onLine });
}
