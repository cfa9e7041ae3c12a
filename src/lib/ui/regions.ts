/**
 * Region names for the pages, from the mesh room directly: the mesh is in the chunk a tab loads
 * first (app/early), so a page that labels regions does not pull the app's main chunk in with
 * `$lib/index` during the join.
 */
export { REGIONS, regionLabel } from '../mesh/index.ts'
