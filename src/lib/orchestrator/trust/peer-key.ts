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

/** A claim a peer sends itself, over its own authenticated connection (a task offer's `user`). */
export interface DirectKeyClaim {
  publicKey: string
  keyProof: string
}

/** Claims proven directly, kept per peer (the oldest forgotten first). */
export const DIRECT_CLAIMS_KEPT = 1024

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
  /** peerId → a claim the peer sent itself (`prove`), checked once; read when its presence has not proven a key (yet). */
  readonly #direct = new Map<string, { key: string; proof: string; verdict: Promise<boolean>; proven?: boolean }>()
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
    const fromPresence = p == null ? undefined : this.#look(p)
    if (fromPresence != null) return fromPresence
    const d = this.#direct.get(peerId)
    return d?.proven === true ? d.key : undefined
  }

  /**
   * Check a claim `peerId` sent itself over its own connection (a task offer), so its user is known
   * before its presence reaches this peer and is checked: a tab that reloads gets a new peer id and
   * re-offers its steps at once, and its donor must know it is the same profile (issue 16). The proof
   * is bound to the peer id the connection authenticated, as the presence's is. Resolves whether it
   * holds; each (peer, claim) is checked once, a wrong one counted in `refused`.
   */
  async prove(peerId: string, claim: DirectKeyClaim): Promise<boolean> {
    const d = this.#direct.get(peerId)
    if (d != null && d.key === claim.publicKey && d.proof === claim.keyProof) return await d.verdict
    const entry: { key: string; proof: string; verdict: Promise<boolean>; proven?: boolean } = {
      key: claim.publicKey,
      proof: claim.keyProof,
      verdict: verifyPeerKey(peerId, claim.publicKey, claim.keyProof).catch(() => false)
    }
    this.#direct.delete(peerId)
    this.#direct.set(peerId, entry)
    if (this.#direct.size > DIRECT_CLAIMS_KEPT) this.#direct.delete(this.#direct.keys().next().value!)
    const ok = await entry.verdict
    if (this.#direct.get(peerId) === entry) entry.proven = ok
    if (ok) this.#onProven()
    else this.#refused++
    return ok
  }

  /** Check every peer's claim not checked yet; resolves once all are settled. */
  async check(): Promise<void> {
    // Called on every mesh change (once a second and more): only claims not seen yet make a promise.
    const unseen = this.#peers().filter((p) => p.publicKey != null && this.#seen(p) == null)
    if (unseen.length > 0) await Promise.all(unseen.map((p) => this.#verify(p)))
  }

  /** The check of `p`'s current claim, when that claim (key and proof) was checked or is being checked. */
  #seen(p: PeerKeyClaim): { key: string; proof: string; verdict: 'pending' | 'proven' | 'refused' } | undefined {
    const c = this.#checked.get(p.id)
    return c != null && c.key === p.publicKey && c.proof === (p.keyProof ?? '') ? c : undefined
  }

  #look(p: PeerKeyClaim): string | undefined {
    if (p.publicKey == null) return undefined
    const c = this.#seen(p)
    if (c != null) return c.verdict === 'proven' ? c.key : undefined
    void this.#verify(p)
    return undefined
  }

  async #verify(p: PeerKeyClaim): Promise<void> {
    if (p.publicKey == null || this.#seen(p) != null) return
    const key = p.publicKey
    const proof = p.keyProof ?? ''
    const entry = { key, proof, verdict: 'pending' as 'pending' | 'proven' | 'refused' }
    this.#checked.set(p.id, entry)
    const ok = proof !== '' && (await verifyPeerKey(p.id, key, proof))
    if (this.#checked.get(p.id) !== entry) return // a newer claim replaced it meanwhile
    entry.verdict = ok ? 'proven' : 'refused'
    if (ok) this.#onProven()
    else this.#refused++
  }

  /** Forget peers no longer listed, once more are kept than listed (bounded memory; called on every mesh change). */
  prune(): void {
    const peers = this.#peers()
    if (this.#checked.size <= peers.length) return
    const live = new Set(peers.map((p) => p.id))
    for (const id of this.#checked.keys()) if (!live.has(id)) this.#checked.delete(id)
  }
}
