/**
 * The tab's one ZeroState, started as early as the app can: SvelteKit's client `init` hook
 * (src/hooks.client.ts) calls `bootZeroState()` before the first page is loaded and drawn,
 * so joining the mesh (relay, reservation, presence, WebRTC dials: mostly waiting on the
 * network) overlaps the app shell's own start instead of following it. The layout takes
 * the same promise when it mounts.
 *
 * Only the early start (mesh node and identity, `$lib/app/early`) is imported statically:
 * the rest of the app (memory, runtime, orchestrator, LLM engines, workflows: most of the
 * code) is a chunk of its own, so a new tab starts joining before that chunk is downloaded
 * and parsed (issue 11: a new tab joins within 3 s). That chunk is imported and started
 * only once the join is done or bounded (`EarlyStart.joined`); meanwhile the
 * layout says "Joining the mesh…".
 */
import { type EarlyStart, startEarly } from '$lib/app/early/index'
import type { ZeroStateApi } from '$lib/index'

let booting: Promise<ZeroStateApi> | undefined

/** The performance mark set when the rest of the app starts (after the join: `EarlyStart.joined`). */
export const APP_START_MARK = 'zerostate:app-start'
/** The performance mark set when the app has started (`createZeroState` resolved). */
export const APP_READY_MARK = 'zerostate:app-ready'

/** The started (or starting) ZeroState of this tab; the first call starts it. */
export function bootZeroState(): Promise<ZeroStateApi> {
  if (booting != null) return booting
  let early: EarlyStart | undefined
  let started: Promise<ZeroStateApi>
  try {
    early = startEarly()
    const taken = early
    // The app's code is loaded and run once the join is done (EarlyStart.joined): its modules'
    // evaluation and its start would compete with the dials for the main thread.
    // `zerostate:app-start` marks when it began.
    started = taken
      .joined()
      .then(() => import('$lib/index'))
      .then(({ createZeroState }) => {
        performance.mark(APP_START_MARK)
        return createZeroState({ early: taken }).then((api) => {
          performance.mark(APP_READY_MARK)
          return api
        })
      })
  } catch (err) {
    started = Promise.reject(err)
  }
  booting = started
  // A start that failed is not kept: the next call (a remount, a retry) starts afresh, with a node of its own.
  started.catch(() => {
    if (booting === started) booting = undefined
    const node = early
    if (node != null) void node.started.then(() => node.mesh.stop()).catch(() => {})
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
