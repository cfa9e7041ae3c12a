import type { PrivateKey } from '@libp2p/interface'
import { webCryptoEd25519 } from '../core/index.ts'

/**
 * A fresh Ed25519 key for this tab's libp2p node, made by the platform's WebCrypto
 * (core/webcrypto-key.ts: not in JavaScript on the join's critical path, issue 11).
 * Undefined where WebCrypto has no Ed25519: libp2p then makes it.
 */
export async function freshPeerKey(subtle: SubtleCrypto | null = globalThis.crypto?.subtle ?? null): Promise<PrivateKey | undefined> {
  return await webCryptoEd25519(subtle)
}
