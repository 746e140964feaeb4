import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration and end-to-end tests share loop devices, mounts and the CPU: one file at a time.
    fileParallelism: false,
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
