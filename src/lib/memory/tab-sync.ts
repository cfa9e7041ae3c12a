/**
 * Live sync between tabs of one browser profile over BroadcastChannel
 * (y-indexeddb alone only shows another tab's writes after a reload —
 * FIELD-NOTES). Same protocol shape as the mesh: a newcomer posts its state
 * vector, others answer with what it lacks, then updates are posted as made.
 * Messages are validated; remote updates are walked by the guard and applied
 * with `origin === this`, so they are not echoed.
 */
import * as Y from 'yjs'
import * as v from 'valibot'
import { Counters } from '../core/index.ts'
import { logger } from '../core/index.ts'
import { checkStateVector, checkUpdate } from './update-guard.ts'

const log = logger('memory:tabs')

const Bytes = v.pipe(
  v.instance(Uint8Array<ArrayBufferLike>),
  v.check((b) => b.byteLength <= 64 * 1024 * 1024, 'too large')
)
/** Messages between tabs. */
export const TabMessageSchema = v.variant('type', [
  v.object({ type: v.literal('step1'), from: v.string(), sv: Bytes }),
  v.object({ type: v.literal('step2'), from: v.string(), to: v.string(), update: Bytes }),
  v.object({ type: v.literal('update'), from: v.string(), update: Bytes })
])
type TabMessage = v.InferOutput<typeof TabMessageSchema>

/** Syncs `doc` with the same doc in this profile's other tabs. */
export class TabSync {
  readonly #channel: BroadcastChannel | undefined
  readonly #id = Math.random().toString(36).slice(2)
  readonly #counters: Counters
  readonly doc: Y.Doc
  #destroyed = false

  constructor(channelName: string, doc: Y.Doc, opts: { counters?: Counters; allowedRoots?: ReadonlySet<string> } = {}) {
    this.doc = doc
    this.#counters = opts.counters ?? new Counters('tabs')
    this.#allowedRoots = opts.allowedRoots
    if (typeof BroadcastChannel === 'undefined') return
    this.#channel = new BroadcastChannel(channelName)
    this.#channel.onmessage = (e) => this.#onMessage(e.data)
    doc.on('update', this.#onUpdate)
    doc.on('destroy', this.#onDestroy)
    this.#post({ type: 'step1', from: this.#id, sv: Y.encodeStateVector(doc) })
  }

  readonly #allowedRoots: ReadonlySet<string> | undefined

  #post(msg: TabMessage): void {
    try {
      this.#channel?.postMessage(msg)
    } catch (err) {
      this.#counters.inc('postErrors')
      log('post failed: %s', (err as Error)?.message)
    }
  }

  #onMessage(data: unknown): void {
    if (this.#destroyed) return
    const parsed = v.safeParse(TabMessageSchema, data)
    if (!parsed.success) {
      this.#counters.inc('invalidMessages')
      return
    }
    const msg = parsed.output
    if (msg.from === this.#id) return
    try {
      if (msg.type === 'step1') {
        checkStateVector(msg.sv)
        this.#post({ type: 'step2', from: this.#id, to: msg.from, update: Y.encodeStateAsUpdate(this.doc, msg.sv) })
        return
      }
      if (msg.type === 'step2' && msg.to !== this.#id) return
      checkUpdate(msg.update, this.#allowedRoots)
      Y.applyUpdate(this.doc, msg.update, this)
      this.#counters.inc('updatesApplied')
    } catch (err) {
      // Never throw in a listener: drop, count, log.
      this.#counters.inc('rejectedUpdates')
      log('dropped a message from another tab: %s', (err as Error)?.message)
    }
  }

  readonly #onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this) return
    this.#post({ type: 'update', from: this.#id, update })
  }

  readonly #onDestroy = (): void => {
    this.destroy()
  }

  /** Stop; tied to the doc's destroy. */
  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    this.doc.off('update', this.#onUpdate)
    this.doc.off('destroy', this.#onDestroy)
    this.#channel?.close()
  }
}
