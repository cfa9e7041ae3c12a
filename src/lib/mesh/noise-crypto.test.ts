import { readFileSync } from 'node:fs'
import { type ICryptoInterface, noise, pureJsCrypto } from '@chainsafe/libp2p-noise'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { webCryptoNoise } from './noise-crypto.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** A noise handshake over an in-memory connection pair, each side with its own crypto; resolves with what each side learnt. */
async function handshake(dialer: ICryptoInterface, listener: ICryptoInterface) {
  const [keyA, keyB] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
  const components = (privateKey: typeof keyA) => ({
    privateKey,
    peerId: peerIdFromPrivateKey(privateKey),
    logger: defaultLogger(),
    upgrader: { getStreamMuxers: () => new Map() }
  })
  const a = noise({ crypto: dialer })(components(keyA) as never)
  const b = noise({ crypto: listener })(components(keyB) as never)
  const [outbound, inbound] = multiaddrConnectionPair()
  const [out, inn] = await Promise.all([
    a.secureOutbound(outbound, { remotePeer: peerIdFromPrivateKey(keyB), skipStreamMuxerNegotiation: true }),
    b.secureInbound(inbound, { skipStreamMuxerNegotiation: true })
  ])
  // A message each way through the ciphers the handshake keyed.
  const got = new Promise<string>((resolve) => {
    inn.connection.addEventListener('message', (e) => {
      resolve(new TextDecoder().decode((e as unknown as { data: { subarray: () => Uint8Array } }).data.subarray()))
    })
  })
  out.connection.send(new TextEncoder().encode('hello through noise'))
  return {
    dialerSaw: out.remotePeer.toString(),
    listenerSaw: inn.remotePeer.toString(),
    a: peerIdFromPrivateKey(keyA).toString(),
    b: peerIdFromPrivateKey(keyB).toString(),
    got: await got
  }
}

describe('webCryptoNoise: X25519 by WebCrypto for noise (join time, issue 11)', () => {
  it('agrees with the JavaScript curve: the same shared secret from either side', async () => {
    const w = webCryptoNoise({ poolSize: 2 })
    await w.ready
    const mine = w.crypto.generateX25519KeyPair()
    const theirs = pureJsCrypto.generateX25519KeyPair()
    const ours = await (w.crypto.generateX25519SharedKey(mine.privateKey, theirs.publicKey) as unknown as Promise<Uint8Array>)
    expect(hex(ours)).toBe(hex(pureJsCrypto.generateX25519SharedKey(theirs.privateKey, mine.publicKey)))
    // The exported private key is the one WebCrypto used: the JavaScript curve gets the same public key and secret from it.
    expect(hex(pureJsCrypto.generateX25519KeyPairFromSeed(mine.privateKey).publicKey)).toBe(hex(mine.publicKey))
    expect(w.stats).toMatchObject({ webCryptoKeys: 1, jsKeys: 0, webCryptoSecrets: 1, jsSecrets: 0 })
  })

  it('hands each pooled key out once, falls back to JavaScript when the pool is empty, then refills', async () => {
    const w = webCryptoNoise({ poolSize: 3 })
    await w.filled()
    const keys = [1, 2, 3, 4].map(() => hex(w.crypto.generateX25519KeyPair().publicKey))
    expect(new Set(keys).size).toBe(4)
    expect(w.stats).toMatchObject({ webCryptoKeys: 3, jsKeys: 1 })
    // A JavaScript key's secrets are the JavaScript curve's (WebCrypto has no handle on it).
    await new Promise<void>((resolve, reject) => {
      const until = Date.now() + 5000
      const poll = (): void => {
        w.crypto.generateX25519KeyPair()
        if (w.stats.webCryptoKeys > 3) resolve()
        else if (Date.now() > until) reject(new Error('the pool was not refilled'))
        else setTimeout(poll, 10)
      }
      poll()
    })
  })

  it('is ready with the static key alone: libp2p is not created after the whole pool', async () => {
    const real = globalThis.crypto.subtle
    let calls = 0
    const gate = Promise.withResolvers<void>()
    const subtle = {
      generateKey: async (alg: AlgorithmIdentifier, extractable: boolean, usages: KeyUsage[]) => {
        // Every key after the first waits until the test lets it go.
        if (calls++ > 0) await gate.promise
        return await real.generateKey(alg, extractable, usages)
      },
      exportKey: (f: 'raw' | 'pkcs8', k: CryptoKey) => real.exportKey(f, k),
      importKey: real.importKey.bind(real),
      deriveBits: real.deriveBits.bind(real)
    } as unknown as SubtleCrypto
    const w = webCryptoNoise({ subtle, poolSize: 4 })
    await w.ready
    w.crypto.generateX25519KeyPair()
    expect(w.stats).toMatchObject({ webCryptoKeys: 1, jsKeys: 0 })
    gate.resolve()
    await w.filled()
    w.crypto.generateX25519KeyPair()
    expect(w.stats).toMatchObject({ webCryptoKeys: 2, jsKeys: 0 })
  })

  it('rejects a small-order remote key as the JavaScript curve does', async () => {
    const w = webCryptoNoise({ poolSize: 1 })
    await w.ready
    const mine = w.crypto.generateX25519KeyPair()
    expect(() => pureJsCrypto.generateX25519SharedKey(pureJsCrypto.generateX25519KeyPair().privateKey, new Uint8Array(32))).toThrow()
    await expect(w.crypto.generateX25519SharedKey(mine.privateKey, new Uint8Array(32)) as unknown as Promise<Uint8Array>).rejects.toThrow()
  })

  it('without X25519 in WebCrypto, every key and secret is JavaScript and nothing hangs', async () => {
    const subtle = { generateKey: () => Promise.reject(new Error('NotSupportedError')) } as unknown as SubtleCrypto
    const w = webCryptoNoise({ subtle })
    await w.ready
    const r = await handshake(w.crypto, pureJsCrypto)
    expect(r.got).toBe('hello through noise')
    expect(w.stats.webCryptoKeys + w.stats.webCryptoSecrets).toBe(0)
    expect(w.stats.jsSecrets).toBe(3)
  })

  it('a full noise XX handshake (patched to await the DH) with WebCrypto on either side or both', async () => {
    for (const [dialer, listener] of [
      [webCryptoNoise(), undefined],
      [undefined, webCryptoNoise()],
      [webCryptoNoise(), webCryptoNoise()]
    ] as const) {
      await Promise.all([dialer?.filled(), listener?.filled()])
      const r = await handshake(dialer?.crypto ?? pureJsCrypto, listener?.crypto ?? pureJsCrypto)
      expect(r.dialerSaw).toBe(r.b)
      expect(r.listenerSaw).toBe(r.a)
      expect(r.got).toBe('hello through noise')
      // Static + ephemeral key, three secrets per side (XX: ee, es, se), all by WebCrypto.
      for (const w of [dialer, listener]) if (w != null) expect(w.stats).toMatchObject({ webCryptoKeys: 2, jsKeys: 0, webCryptoSecrets: 3, jsSecrets: 0 })
    }
  })

  it('the installed noise awaits its DH (patches/@chainsafe+libp2p-noise)', () => {
    const file = readFileSync(new URL('../../../node_modules/@chainsafe/libp2p-noise/dist/src/protocol.js', import.meta.url), 'utf8')
    expect(file).toContain('this.ss.mixKey(await this.crypto.dh(')
  })
})
