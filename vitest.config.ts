import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that start bin/hardneg.js need dist/ to match src/.
    globalSetup: ['test/_build.ts'],
    // CI machines have 2 cores shared with the onnxruntime threads; end-to-end cases mine real data.
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
})
