// Mutation testing (Stryker), not part of `npm test`: `npm run test:mutation` runs it
// once over route/ and once over the dispatcher. STRYKER_TARGET picks the run;
// STRYKER_VITEST_CONFIG and STRYKER_REPORT override its vitest config and report name
// (e.g. to score a part with and without a test file).
const targets = {
  route: { mutate: ['src/lib/orchestrator/route/**/*.ts', '!src/lib/orchestrator/route/**/*.test.ts'], vitestConfig: 'stryker/vitest.route.config.mjs' },
  dispatch: { mutate: ['src/lib/orchestrator/dispatch/dispatcher.ts'], vitestConfig: 'stryker/vitest.dispatch.config.mjs' }
}
const name = process.env.STRYKER_TARGET ?? 'route'
const target = targets[name]
const report = process.env.STRYKER_REPORT ?? name
if (target == null) throw new Error(`STRYKER_TARGET must be one of ${Object.keys(targets).join(', ')}, not ${name}`)

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: process.env.STRYKER_VITEST_CONFIG ?? target.vitestConfig, related: false },
  mutate: target.mutate,
  coverageAnalysis: 'perTest',
  checkers: [],
  concurrency: 2,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${report}.html` },
  jsonReporter: { fileName: `reports/mutation/${report}.json` },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['build', 'test-results', 'static/agents', 'bench/results', 'reports'],
  cleanTempDir: 'always'
}
