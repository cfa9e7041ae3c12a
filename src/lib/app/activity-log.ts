/**
 * What a user should see on the Logs page of a tab just opened (issue 15): the tab's start,
 * its relay link, app peers joining, leaving or going direct, and donation switched on or
 * off, as info records (module `app:mesh`, `app:donation`); a lost relay is a warning. Tasks
 * log their own course with their trace ids (task-tracing.ts). Changes are found by diffing
 * on the mesh's `change` events, at most every `everyMs`, so the cost is O(peers) a few times
 * a second and nothing on a task's path.
 */
import { listen, logger, type TypedEventTarget } from '../core/index.ts'
import type { RelayStatus } from '../mesh/index.ts'

const meshLog = logger('app:mesh')
const donationLog = logger('app:donation')

/** What the activity log reads. Narrow, so a test passes stubs. */
export interface ActivityComponents {
  mesh: TypedEventTarget<{ change: Event; status: CustomEvent<RelayStatus> }> & {
    readonly peerId: string
    readonly status: RelayStatus
    readonly ready: Promise<void>
    peers(): Array<{ id: string; relay?: boolean; transport: string; donating?: boolean }>
  }
  /** This profile's signing key (named once at start). */
  publicKey?: string
  /** Donation on or off now; `changes` says when to look again. */
  donation?: { state(): { enabled: boolean; workers: number } }
  changes?: { subscribe(listener: () => void): () => void }
  /** Peers are compared at most this often (ms; 0: at every change). Default 250. */
  everyMs?: number
}

/** A peer id as logs show it: short, still unique enough to find in the Mesh page. */
const short = (id: string): string => (id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id)

/** Start logging the tab's activity; returns the function that stops it. */
export function activityLog(c: ActivityComponents): () => void {
  const { mesh } = c
  const everyMs = c.everyMs ?? 250
  let timer: ReturnType<typeof setTimeout> | undefined
  meshLog.info('peer %s starting%s', mesh.peerId, c.publicKey != null ? ` (profile key ${c.publicKey.slice(0, 20)}…)` : '')
  let stopped = false
  mesh.ready.then(
    () => {
      if (!stopped) meshLog.info('peer %s joined the mesh', short(mesh.peerId))
    },
    () => {}
  )

  let relay: RelayStatus['state'] | undefined
  const onStatus = (s: RelayStatus): void => {
    if (s.state === relay) return
    const was = relay
    relay = s.state
    if (s.state === 'connected') meshLog.info('relay connected (%s)', s.connected.map(short).join(', ') || 'none named')
    else if (s.state === 'unreachable') meshLog.warn('relay unreachable%s', s.error != null ? `: ${s.error}` : '')
    else if (s.state === 'connecting' && was === 'connected') meshLog.warn('relay link lost: reconnecting')
  }

  /** App peers last seen: id → transport. */
  let known = new Map<string, string>()
  const onChange = (): void => {
    const now = new Map<string, string>()
    for (const p of mesh.peers()) if (p.relay !== true) now.set(p.id, p.transport)
    for (const [id, transport] of now) {
      const before = known.get(id)
      if (before == null) meshLog.info('peer %s joined (%s)', short(id), transport)
      else if (before !== transport) meshLog.info('peer %s now over %s (was %s)', short(id), transport, before)
    }
    for (const id of known.keys()) if (!now.has(id)) meshLog.info('peer %s left', short(id))
    known = now
  }

  let donating: boolean | undefined
  const onDonation = (): void => {
    const d = c.donation?.state()
    if (d == null || d.enabled === donating) return
    const first = donating == null
    donating = d.enabled
    if (d.enabled) donationLog.info('donating compute: on, %d worker%s', d.workers, d.workers === 1 ? '' : 's')
    else if (!first) donationLog.info('donating compute: off')
  }

  onStatus(mesh.status)
  onChange()
  onDonation()
  const offs = [
    listen(mesh, 'status', (e) => onStatus(e.detail)),
    listen(mesh, 'change', () => {
      onStatus(mesh.status)
      if (everyMs <= 0) onChange()
      // A busy tab's mesh changes many times a second (RTTs, presence): compare peers at most every everyMs.
      else
        timer ??= setTimeout(() => {
          timer = undefined
          if (!stopped) onChange()
        }, everyMs)
    }),
    c.changes?.subscribe(onDonation) ?? (() => {})
  ]
  return () => {
    stopped = true
    clearTimeout(timer)
    for (const off of offs) off()
  }
}
