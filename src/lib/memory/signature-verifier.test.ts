import { describe, it, expect } from 'vitest'
import { signJson, verifyJson } from '../core/index.ts'
import { SignatureVerifier } from './signature-verifier.ts'
import { newIdentity } from './test-helpers.ts'

describe('SignatureVerifier', () => {
  it('agrees with verifyJson on valid, tampered, wrong-key and malformed signatures', async () => {
    const alice = await newIdentity()
    const bob = await newIdentity()
    const value = { b: [1, 'x'], a: { z: null, y: true } }
    const sig = await signJson(alice, value)
    const v = new SignatureVerifier()
    const cases: Array<[string, unknown, string]> = [
      [alice.publicKey, value, sig],
      [alice.publicKey, { a: { y: true, z: null }, b: [1, 'x'] }, sig], // key order does not matter
      [alice.publicKey, { ...value, b: [2, 'x'] }, sig],
      [bob.publicKey, value, sig],
      [alice.publicKey, value, sig.slice(0, -2) + (sig.endsWith('AA') ? 'AB' : 'AA')],
      [alice.publicKey, value, 'not base64url!'],
      ['ed25519:short', value, sig],
      ['rsa:whatever', value, sig]
    ]
    for (const [pk, val, s] of cases) expect(await v.verify(pk, val, s)).toBe(await verifyJson(pk, val, s))
    expect(await v.verify(alice.publicKey, value, sig)).toBe(true)
    expect(await v.verify(bob.publicKey, value, sig)).toBe(false)
  })
})
