// A client reading a repository as dnf does (repomd.xml, then the primary metadata it names, then
// packages the primary lists), checking every checksum. A separate process, so it reads truly
// concurrently with the publishes under test. Two readers run in it:
//
// - a free loop, reading round after round without pause, during publishes too. It reports each
//   snapshot it has completed a round on, once, as `snapshot <sha256 of repomd.xml>`: the test
//   waits for that line (an event, not a delay) before it publishes the next snapshot, so the
//   count of snapshots seen is exact whatever the machine's speed.
// - a held reader, driven by the test over stdin, for the interleavings the free loop hits only by
//   chance: on `hold repomd` (or `hold primary`) it starts a read, stops after fetching repomd.xml
//   (or also the primary) and says `held <stage> <sha>`; on `go` it fetches the rest of that old
//   snapshot (its primary through the `repodata` link, every package it lists) and says
//   `resumed <sha>`. The test publishes in between, so a read is in the middle of a switch (and of
//   retention) on every publish, by construction.
//
// Every failed fetch is reported at once as `error <message>`. On `stop` the free loop ends its
// round and the client prints `result {rounds, snapshots, held, errors}` and exits.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { gunzipSync } from 'node:zlib';

const base = process.argv[2];
const sha = (b) => createHash('sha256').update(b).digest('hex');
const say = (line) => process.stdout.write(`${line}\n`);

let stop = false;

async function get(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

/** repomd.xml: its bytes' digest (the snapshot's identity) and the primary it names. */
async function readRepomd() {
  const bytes = await get(`${base}repodata/repomd.xml`);
  const m = /<data type="primary">[\s\S]*?<checksum type="sha256">([0-9a-f]+)<\/checksum>[\s\S]*?<location href="([^"]+)"/.exec(bytes.toString());
  if (!m) throw new Error('repomd.xml names no primary');
  return { id: sha(bytes), primarySum: m[1], primaryHref: m[2] };
}

/** The primary named by repomd.xml, checked against it; the packages it lists. */
async function readPrimary(md) {
  const raw = await get(`${base}${md.primaryHref}`);
  if (sha(raw) !== md.primarySum) throw new Error(`${md.primaryHref}: checksum differs from repomd.xml`);
  const pkgs = [...gunzipSync(raw).toString().matchAll(/<checksum type="sha256" pkgid="YES">([0-9a-f]+)<\/checksum>[\s\S]*?<location href="([^"]+)"/g)];
  if (pkgs.length === 0) throw new Error('primary lists no package');
  return pkgs.map(([, sum, href]) => ({ sum, href }));
}

async function readPackage(p) {
  if (sha(await get(`${base}${p.href}`)) !== p.sum) throw new Error(`${p.href}: checksum differs from primary`);
}

const errors = [];
function failed(err) {
  const msg = String(err?.message ?? err);
  errors.push(msg);
  say(`error ${msg}`);
}

// The held reader: one read at a time, paused where the test asked.
let held;
let heldDone = 0;
let release;
async function heldRead(stage) {
  let id = '?';
  try {
    const md = await readRepomd();
    id = md.id;
    const pkgs = stage === 'primary' ? await readPrimary(md) : undefined;
    say(`held ${stage} ${id}`);
    await new Promise((r) => (release = r));
    for (const p of pkgs ?? (await readPrimary(md))) await readPackage(p);
    heldDone++;
  } catch (err) {
    failed(err);
  }
  say(`resumed ${id}`);
}

// The test ends its stdin when it stops the client, or when it dies: stop either way.
const commands = createInterface({ input: process.stdin });
commands.on('close', () => {
  stop = true;
  if (release) resume();
});
commands.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'hold' && (arg === 'repomd' || arg === 'primary') && !held) held = heldRead(arg).finally(() => (held = undefined));
  else if (cmd === 'go' && release) resume();
  else if (cmd === 'stop') {
    stop = true;
    if (release) resume();
  } else failed(new Error(`poll-repo: unexpected command '${line}'`));
});

function resume() {
  const r = release;
  release = undefined;
  r();
}

// The free loop.
const snapshots = [];
let rounds = 0;
while (!stop) {
  try {
    const md = await readRepomd();
    const pkgs = await readPrimary(md);
    await readPackage(pkgs[rounds % pkgs.length]);
    rounds++;
    if (!snapshots.includes(md.id)) {
      snapshots.push(md.id);
      say(`snapshot ${md.id}`);
    }
  } catch (err) {
    failed(err);
    if (errors.length > 50) break;
  }
}
await held;
process.stdout.write(`result ${JSON.stringify({ rounds, snapshots, held: heldDone, errors })}\n`, () => process.exit(0));
