/**
 * Proof of a peer's profile key (issue 12). Presence announces the user behind a
 * peer (`publicKey`), but anyone can type another profile's key there. A peer proves
 * the key by signing `{kind 'zerostate/peer-key/1', peerId}` with it: the signature is
 * bound to its own peer id (gossipsub signs presence by that id, so a copied proof
 * is useless elsewhere). Until a claim is proven, the peer is its own user
 * (`peer:<id>`): not credited, not reputed, not sharing any profile's cached results.
 */
import { signJson, verifyJson, type Identity } from '../../core/index.ts'

/** The signed body of a peer-key proof. */
export function peerKeyBody(peerId: string): { kind: 'zerostate/peer-key/1'; peerId: string } {
  return { kind: 'zerostate/peer-key/1', peerId }
}

/** Sign the proof that `identity` is the user behind `peerId` (base64url, for presence's `keyProof`). */
export async function signPeerKey(identity: Identity, peerId: string): Promise<string> {
  return await signJson(identity, peerKeyBody(peerId))
}

/** Whether `proof` shows that the holder of `publicKey` runs `peerId`. Never throws. */
export async function verifyPeerKey(peerId: string, publicKey: string, proof: string): Promise<boolean> {
  if (typeof proof !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(proof)) return false
  return await verifyJson(publicKey, peerKeyBody(peerId), proof)
}

/** A peer's claim as presence carries it. */
export interface PeerKeyClaim {
  id: string
  publicKey?: string
  keyProof?: string
}

/**
 * The user behind each peer, from proven claims only. `userOf` is synchronous (the
 * dispatcher and the donor ask per message): an unseen claim is checked in the
 * background and counts once proven; `check()` checks every peer now (call it on
 * mesh changes so claims are proven before the first task).
 */
export class ProvenPeerKeys {
  readonly #peers: () => readonly PeerKeyClaim[]
  /** peerId → the claim last checked and its verdict ('pending' while checking). */
  readonly #checked = new Map<string, { key: string; proof: string; verdict: 'pending' | 'proven' | 'refused' }>()
  readonly #onProven: () => void
  #refused = 0

  /** `onProven` is called whenever a claim becomes proven (the UI and the router may repaint). */
  constructor(peers: () => readonly PeerKeyClaim[], onProven: () => void = () => {}) {
    this.#peers = peers
    this.#onProven = onProven
  }

  /** Claims refused so far (a wrong or missing signature). */
  get refused(): number {
    return this.#refused
  }

  /** The proven profile key of `peerId`, or undefined (unknown, unproven, or still being checked). */
  userOf(peerId: string): string | undefined {
    const p = this.#peers().find((x) => x.id === peerId)
    if (p == null) return undefined
    return this.#look(p)
  }

  /** Check every peer's claim not checked yet; resolves once all are settled. */
  async check(): Promise<void> {
    await Promise.all(this.#peers().map((p) => this.#verify(p)))
  }

  #look(p: PeerKeyClaim): string | undefined {
    if (p.publicKey == null) return undefined
    const c = this.#checked.get(p.id)
    if (c != null && c.key === p.publicKey && c.proof === (p.keyProof ?? '')) return c.verdict === 'proven' ? c.key : undefined
    void this.#verify(p)
    return undefined
  }

  async #verify(p: PeerKeyClaim): Promise<void> {
    if (p.publicKey == null) return
    const key = p.publicKey
    const proof = p.keyProof ?? ''
    const c = this.#checked.get(p.id)
    if (c != null && c.key === key && c.proof === proof) return
    const entry = { key, proof, verdict: 'pending' as 'pending' | 'proven' | 'refused' }
    this.#checked.set(p.id, entry)
    const ok = proof !== '' && (await verifyPeerKey(p.id, key, proof))
    if (this.#checked.get(p.id) !== entry) return // a newer claim replaced it meanwhile
    entry.verdict = ok ? 'proven' : 'refused'
    if (ok) this.#onProven()
    else this.#refused++
  }

  /** Forget peers no longer listed (bounded memory). */
  prune(): void {
    const live = new Set(this.#peers().map((p) => p.id))
    for (const id of this.#checked.keys()) if (!live.has(id)) this.#checked.delete(id)
  }
}
