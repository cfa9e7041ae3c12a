/**
 * The tab's one ZeroState, started as early as the app can: SvelteKit's client `init` hook
 * (src/hooks.client.ts) calls `bootZeroState()` before the first page is loaded and drawn,
 * so joining the mesh (relay, reservation, presence, WebRTC dials: mostly waiting on the
 * network) overlaps the app shell's own start instead of following it. The layout takes
 * the same promise when it mounts.
 */
import { createZeroState, type ZeroStateApi } from '$lib/index'

let booting: Promise<ZeroStateApi> | undefined

/** The started (or starting) ZeroState of this tab; the first call starts it. */
export function bootZeroState(): Promise<ZeroStateApi> {
  if (booting != null) return booting
  const started = createZeroState()
  booting = started
  // A start that failed is not kept: the next call (a remount, a retry) starts afresh.
  started.catch(() => {
    if (booting === started) booting = undefined
  })
  return started
}

/** Stop this tab's ZeroState (the layout's teardown); the next `bootZeroState()` starts a new one. */
export async function stopZeroState(): Promise<void> {
  const b = booting
  booting = undefined
  if (b == null) return
  const api = await b.catch(() => undefined)
  await api?.stop()
}
