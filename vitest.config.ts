import { defineConfig } from 'vitest/config';

// Two projects. The unit tier shares nothing (pure code, its own temporary folders): its files run
// in parallel. Integration and end-to-end tests share loop devices, mounts, libvirt and the CPU:
// one file at a time, after the unit tier is done (groupOrder), so the two never overlap.
export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        // One child process runs these files one after another (singleFork: the per-project form
        // of fileParallelism: false in this vitest), each file still with its own module state.
        test: { name: 'system', include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'], poolOptions: { forks: { singleFork: true } }, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
