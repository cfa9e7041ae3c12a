/**
 * The region this profile chose (Settings, `zerostate.setRegion`), read before the mesh
 * starts so that the very first presence carries it, not one a second later.
 */
import { isRegion, type Region } from '../../mesh/index.ts'

/** The region saved in `storage` under `key` (default `zerostate:region`), when it is a valid one. */
export function savedRegion(storage?: { getItem(key: string): string | null } | null, key = 'zerostate:region'): Region | undefined {
  try {
    const v = (storage === undefined ? globalThis.localStorage : storage)?.getItem(key)
    return isRegion(v) ? v : undefined
  } catch {
    return undefined
  }
}
