/**
 * Reactive bridge from the ZeroState API to Svelte: components read `app.peers`,
 * `app.status`… and re-render when the mesh changes (createSubscriber, no $effect copies).
 */
import { createSubscriber } from 'svelte/reactivity'
import { getContext, setContext } from 'svelte'
import type { PeerInfo, RelayStatus, ZeroStateApi } from '$lib/index'

export class ZeroStateView {
  readonly api: ZeroStateApi
  readonly #subscribe: () => void

  constructor(api: ZeroStateApi) {
    this.api = api
    this.#subscribe = createSubscriber((update) => api.subscribe(update))
  }

  get peers(): PeerInfo[] { this.#subscribe(); return this.api.peers() }
  get status(): RelayStatus { this.#subscribe(); return this.api.relayStatus() }
  get metrics(): Record<string, number> { this.#subscribe(); return this.api.metrics() }
  get peerId(): string { return this.api.peerId }
}

const KEY = Symbol('zerostate')

/** Hand the view down from the root layout. */
export function setZeroState(view: ZeroStateView): void { setContext(KEY, view) }

/** Read the view set by the root layout. */
export function useZeroState(): ZeroStateView {
  const view = getContext<ZeroStateView | undefined>(KEY)
  if (view == null) throw new Error('useZeroState() called outside the root layout')
  return view
}
