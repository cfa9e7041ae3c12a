// Vitest for the dispatcher mutation run: every test of dispatch/ and of the orchestrator (verification, strikes and step routing drive the dispatcher too), without the SvelteKit plugins.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  // Stryker's sandbox holds the tracked files only: no .svelte-kit/tsconfig.json for tsconfig.json to extend.
  oxc: { tsconfig: false },
  test: {
    include: ['src/lib/orchestrator/dispatch/*.test.ts', 'src/lib/orchestrator/*.test.ts'],
    environment: 'node',
    setupFiles: ['src/lib/core/polyfills.ts'],
    testTimeout: 20_000
  }
})
