// The CLI as users meet it: exit codes, error messages, nothing written on bad input, and a failed
// boot that keeps its console log.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as qemuImg from '../../src/tools/qemu-img.js';
import { testTmp, removeTree } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';
import { VALID_SET, writeLayerSet } from '../helpers/layerset.js';

const tmp = testTmp('cli');
const env = { OST_IMAGES_KVM: '0' };
afterAll(() => removeTree(tmp));

describe('bad input', () => {
  it('an invalid set: every error, exit 2, and no store created', async () => {
    const { layersDir } = writeLayerSet({ ...VALID_SET, 'app/layer.yaml': 'parent: nope\nsteps:\n  - install: [Bad]\n' });
    const store = path.join(tmp, 'store-never');
    const r = await cli(['build', '--set', 'demo', '--layers-dir', layersDir, '--store', store], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: invalid layer set 'demo':");
    expect(r.stderr).toContain("app/layer.yaml:3: .steps[0].install[0]: 'Bad' is not a valid Debian package name");
    expect(r.stderr).toContain("app/layer.yaml:1: .parent: unknown parent layer 'nope'");
    expect(r.stderr).not.toContain('    at '); // no stack trace without --debug
    expect(existsSync(store)).toBe(false);
  });

  it('an unknown layer or a bad option value: exit 2 with the choices', async () => {
    const r = await cli(['build', '--dry-run', '--layer', 'nosuch', '--store', path.join(tmp, 's')], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("set 'debian12' has no layer 'nosuch' (layers: base, upgrade, engine-installed, host-installed)");
    const p = await cli(['package', '--payload', 'w9.lzma', '--store', path.join(tmp, 's')], env);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain("--payload: 'w9.lzma' is not an rpm payload setting");
  });

  it('an unknown option or a bad choice: exit 2, not a stack trace', async () => {
    const r = await cli(['build', '--backend', 'docker', '--dry-run'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: option '-b, --backend <name>' argument 'docker' is invalid. Allowed choices are auto, chroot, guestfs.");
    const u = await cli(['publish', '--frobnicate'], env);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("error: unknown option '--frobnicate'");
    expect((await cli(['--help'], env)).code).toBe(0);
  });

  it('validate --json lists the layers of a valid set in build order', async () => {
    const r = await cli(['validate', '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ set: 'debian12', layers: ['base', 'upgrade', 'engine-installed', 'host-installed'] });
  });

  it('build --dry-run --json prints the plan and builds nothing', async () => {
    const store = path.join(tmp, 'store-dry');
    const r = await cli(['build', '--dry-run', '--json', '--store', store, '--layer', 'engine-installed'], env);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as { entries: { layer: string; action: string }[] };
    expect(plan.entries.map((e) => `${e.layer}:${e.action}`)).toEqual(['base:build', 'upgrade:build', 'engine-installed:build']);
    expect(existsSync(path.join(store, 'debian12', 'images'))).toBe(false);
  });
});

describe('test-boot', () => {
  it('an image that does not boot: exit 1, the console log kept and its tail printed', async () => {
    const image = path.join(tmp, 'blank.qcow2');
    await qemuImg.create(image, { size: 64 * 1024 ** 2 });
    const log = path.join(tmp, 'console.log');
    const r = await cli(['test-boot', '--image', image, '--timeout', '8', '--console-log', log, '--no-ssh'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('blank.qcow2 did not reach userspace: no match within 8s');
    expect(r.stderr).toContain(`Console log kept at ${log}`);
    expect(readFileSync(log, 'utf8')).toMatch(/SeaBIOS|Booting from Hard Disk/);
  }, 60_000);
});
