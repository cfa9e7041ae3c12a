/**
 * The app's early start: the mesh node and the signing identity, started before the rest
 * of the app has loaded (issue 11). Imports the mesh and core only, so the chunk a tab
 * needs to begin joining stays small.
 */
export { startEarly, type EarlyStart, type EarlyStartOptions } from './start.ts'
export { savedRegion } from './region.ts'
