// A client reading a repository in a tight loop, as dnf does (repomd.xml, then the primary
// metadata it names, then a package the primary lists), checking every checksum, until SIGTERM;
// then prints {rounds, revisions, errors} as JSON. A separate process, so it runs truly
// concurrently with the publishes under test.
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';

const base = process.argv[2];
const sha = (b) => createHash('sha256').update(b).digest('hex');
let stop = false;
process.on('SIGTERM', () => (stop = true));

async function get(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

const errors = [];
const revisions = new Set();
let rounds = 0;
while (!stop) {
  try {
    const repomd = (await get(`${base}repodata/repomd.xml`)).toString();
    revisions.add(/<revision>([^<]+)</.exec(repomd)?.[1]);
    const m = /<data type="primary">[\s\S]*?<checksum type="sha256">([0-9a-f]+)<\/checksum>[\s\S]*?<location href="([^"]+)"/.exec(repomd);
    if (!m) throw new Error('repomd.xml names no primary');
    const raw = await get(`${base}${m[2]}`);
    if (sha(raw) !== m[1]) throw new Error(`${m[2]}: checksum differs from repomd.xml`);
    const pkgs = [...gunzipSync(raw).toString().matchAll(/<checksum type="sha256" pkgid="YES">([0-9a-f]+)<\/checksum>[\s\S]*?<location href="([^"]+)"/g)];
    if (pkgs.length === 0) throw new Error('primary lists no package');
    const [, sum, href] = pkgs[rounds % pkgs.length];
    if (sha(await get(`${base}${href}`)) !== sum) throw new Error(`${href}: checksum differs from primary`);
    rounds++;
    // The test starts publishing once the client is really reading.
    if (rounds === 1) process.stderr.write('ready\n');
  } catch (err) {
    errors.push(String(err.message ?? err));
    if (errors.length > 50) break;
  }
}
process.stdout.write(JSON.stringify({ rounds, revisions: revisions.size, errors }));
