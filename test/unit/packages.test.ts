// The package diff of a layer: what was added, upgraded, downgraded and removed against the
// parent, and the flag for package steps that changed nothing.
import { describe, expect, it } from 'vitest';
import { diffPackages, formatPackageList, parsePackageList, renderDiff } from '../../src/builder/packages.js';
import type { Step } from '../../src/definitions/types.js';

const parent = parsePackageList('bash 5.2.15-2+b2\nlibssl3 3.0.11-1~deb12u1\nvim-tiny 2:9.0.1378-2\nold-tool 1.0-1\n');
const install: Step[] = [{ kind: 'install', packages: ['postgresql'], index: 0 }];

describe('package lists', () => {
  it('parse "name version" lines and format them sorted', () => {
    expect(formatPackageList(parsePackageList('zlib1g 1:1.2.13\n\nbash 5.2\n'))).toBe('bash 5.2\nzlib1g 1:1.2.13\n');
  });
});

describe('diffPackages', () => {
  it('lists added, upgraded (with both versions), downgraded and removed packages, sorted', () => {
    const now = parsePackageList('bash 5.2.15-2+b2\nlibssl3 3.0.15-1~deb12u1\nvim-tiny 2:9.0.1378-1\npostgresql-15 15.8-0+deb12u1\nlibpq5 15.8-0+deb12u1\n');
    const d = diffPackages(parent, now, install, 'upgrade 12-20260101000100');
    expect(d.added).toEqual([{ name: 'libpq5', version: '15.8-0+deb12u1' }, { name: 'postgresql-15', version: '15.8-0+deb12u1' }]);
    expect(d.upgraded).toEqual([{ name: 'libssl3', from: '3.0.11-1~deb12u1', to: '3.0.15-1~deb12u1' }]);
    expect(d.downgraded).toEqual([{ name: 'vim-tiny', from: '2:9.0.1378-2', to: '2:9.0.1378-1' }]);
    expect(d.removed).toEqual([{ name: 'old-tool', version: '1.0-1' }]);
    expect(d.unchanged).toBe(1);
    expect(d.flagged).toBeUndefined();
    expect(renderDiff(d)).toBe(
      [
        'packages: 2 added, 1 upgraded, 1 removed, 1 downgraded, against upgrade 12-20260101000100',
        '+ libpq5 15.8-0+deb12u1',
        '+ postgresql-15 15.8-0+deb12u1',
        '~ libssl3 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1',
        '~ vim-tiny 2:9.0.1378-2 -> 2:9.0.1378-1 (downgrade)',
        '- old-tool 1.0-1',
        '',
      ].join('\n'),
    );
  });

  it('shows rpm versions without the 0: epoch', () => {
    const d = diffPackages(parsePackageList('bash 0:5.1.8-6.el9\n'), parsePackageList('bash 0:5.1.8-9.el9\n'), [{ kind: 'upgrade', index: 0 }]);
    expect(d.upgraded).toEqual([{ name: 'bash', from: '5.1.8-6.el9', to: '5.1.8-9.el9' }]);
  });

  it('flags a layer whose install or upgrade steps changed no package', () => {
    const d = diffPackages(parent, new Map(parent), [...install, { kind: 'upgrade', index: 1 }, { kind: 'run', script: 'x.sh', path: '/x.sh', sha256: '0', index: 2 }]);
    expect(d.flagged).toBe("the layer's install (step 1), upgrade (step 2) changed no package");
    expect(renderDiff(d)).toContain('FLAGGED');
  });

  it('does not flag a layer without package steps, nor a base (no parent list)', () => {
    expect(diffPackages(parent, new Map(parent), [{ kind: 'run', script: 'x.sh', path: '/x.sh', sha256: '0', index: 0 }]).flagged).toBeUndefined();
    const base = diffPackages(undefined, parent, install);
    expect(base.added.length).toBe(4);
    expect(base.flagged).toBeUndefined();
  });
});
