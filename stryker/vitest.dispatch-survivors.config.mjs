// Vitest for scoring the dispatcher's survivor tests alone (STRYKER_VITEST_CONFIG=stryker/vitest.dispatch-survivors.config.mjs):
// a mutant these tests kill, or one the full run (vitest.dispatch.config.mjs) killed before they existed, counts as detected.
// A full dispatcher run takes over an hour on a loaded 2-core machine; this one takes minutes.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  oxc: { tsconfig: false },
  test: {
    include: ['src/lib/orchestrator/dispatch/dispatcher-survivors-*.test.ts'],
    environment: 'node',
    setupFiles: ['src/lib/core/polyfills.ts'],
    testTimeout: 20_000
  }
})
