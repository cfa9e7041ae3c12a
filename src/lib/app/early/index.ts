/**
 * The app's early start: the mesh node and the signing identity, started before the rest
 * of the app has loaded (issue 11). Imports the mesh and core only, so the chunk a tab
 * needs to begin joining stays small.
 */
export { JOIN_FIRST, joinSettled, startEarly, type EarlyStart, type EarlyStartOptions, type JoinView } from './start.ts'
export { savedRegion } from './region.ts'
