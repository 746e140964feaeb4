import { defineConfig } from 'vitest/config';

// Two projects. The unit tier shares nothing (pure code, its own temporary folders): its files run
// in parallel. Then the system tier (integration and end-to-end), two files at a time: every such
// test keeps to its own store, loop devices, mounts, ports, libvirt domains and temporary folder
// (each finds its leftovers by its own paths, never by a count over the machine), so two can run
// side by side; the end-to-end file, the longest, then runs beside the integration files instead
// of after them (on the 2-core CI machine, about a third less wall time). The one daemon they
// share, libvirt, is started once for the tier by test/global-setup.ts. maxForks at the top level
// too: the default, one worker fewer than the cores, would be one on a 2-core machine.
export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'system', include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
