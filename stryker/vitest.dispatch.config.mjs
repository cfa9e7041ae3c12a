// Vitest for the dispatcher mutation run: only the dispatch tests, without the SvelteKit plugins.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  // Stryker's sandbox holds the tracked files only: no .svelte-kit/tsconfig.json for tsconfig.json to extend.
  oxc: { tsconfig: false },
  test: {
    include: ['src/lib/orchestrator/dispatch/dispatch.test.ts', 'src/lib/orchestrator/dispatch/dispatcher-mutants.test.ts'],
    environment: 'node',
    setupFiles: ['src/lib/core/polyfills.ts'],
    testTimeout: 20_000
  }
})
