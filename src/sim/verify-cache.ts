/**
 * A simulation shortcut (recorded in sim.json's "shortcuts"): one Ed25519 verification
 * cache shared by every simulated peer of a thread. In a real mesh each tab checks the
 * signature of every gossip message it receives (gossipsub's StrictSign), of every
 * presence key proof and registry record, on its own CPU; a thread of the simulator runs
 * ~100 peers, so it checked the same signature ~100 times (a CPU profile of 24 peers:
 * 15 % of each worker thread in `crypto.verify`). Here the first peer of a thread to see a
 * (key, message, signature) triple pays the check and the others reuse its verdict.
 *
 * Exact, not approximate: an entry is found by the signature and used only when the key
 * and the signed bytes are the same bytes too, so a signature replayed on other bytes or
 * under another key is checked for real (and fails as it would).
 */
import { publicKeyFromRaw } from '@libp2p/crypto/keys'

interface Entry {
  key: Uint8Array
  data: Uint8Array
  ok: boolean
}

/** Checks done for real and verdicts reused, in this thread. */
export const verifyCacheStats = { checked: 0, reused: 0 }

const MAX_ENTRIES = 50_000
const cache = new Map<string, Entry>()
let installed = false

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

type Verify = (this: { raw: Uint8Array }, data: Uint8Array | { subarray(): Uint8Array }, sig: Uint8Array, options?: unknown) => boolean | Promise<boolean>

/** Share Ed25519 verdicts between the peers of this thread (idempotent). */
export function installVerifyCache(): void {
  if (installed) return
  installed = true
  // Every Ed25519 public key of this thread is an instance of this class (one @libp2p/crypto).
  const proto = Object.getPrototypeOf(publicKeyFromRaw(new Uint8Array(32).fill(1))) as { verify: Verify }
  const original = proto.verify
  proto.verify = function (this: { raw: Uint8Array }, data, sig, options) {
    const bytes = data instanceof Uint8Array ? data : data.subarray()
    const id = Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('base64')
    const hit = cache.get(id)
    if (hit != null && sameBytes(hit.key, this.raw) && sameBytes(hit.data, bytes)) {
      verifyCacheStats.reused++
      return hit.ok
    }
    verifyCacheStats.checked++
    const remember = (ok: boolean): boolean => {
      if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string)
      cache.set(id, { key: this.raw.slice(), data: bytes.slice(), ok })
      return ok
    }
    const result = original.call(this, data, sig, options)
    return result instanceof Promise ? result.then(remember) : remember(result)
  }
}
