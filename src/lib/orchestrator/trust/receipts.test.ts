import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../core/index.ts'
import { InvalidReceiptError } from './errors.ts'
import { Ledger, signReceipt, verifyReceipt } from './receipts.ts'

const agent = 'c'.repeat(64)

describe('receipts and the ledger', () => {
  it('a receipt signed by the submitter verifies anywhere; any change to it does not', async () => {
    const sub = await loadIdentity()
    const donor = await loadIdentity()
    const r = await signReceipt(sub, { task: 't-1', step: 's1', agent, donor: donor.publicKey, price: 2 })
    expect(await verifyReceipt(JSON.parse(JSON.stringify(r)))).toEqual(r)
    await expect(verifyReceipt({ ...r, price: 20 })).rejects.toBeInstanceOf(InvalidReceiptError)
    await expect(verifyReceipt({ ...r, donor: sub.publicKey })).rejects.toBeInstanceOf(InvalidReceiptError)
    await expect(verifyReceipt({ ...r, submitter: (await loadIdentity()).publicKey })).rejects.toThrow(/signature/)
    await expect(verifyReceipt({ ...r, extra: 1 })).rejects.toThrow(/schema/)
    await expect(signReceipt(sub, { task: 't-1', step: 's1', agent, donor: donor.publicKey, price: -1 })).rejects.toBeInstanceOf(InvalidReceiptError)
  })

  it('sums earned, spent and balance; a new profile starts at 0 with only its allowance to spend', async () => {
    const me = await loadIdentity()
    const other = await loadIdentity()
    const ledger = new Ledger(me.publicKey, 5)
    expect(ledger.credits()).toMatchObject({ balance: 0, earned: 0, spent: 0, available: 5, allowance: 5 })
    expect(ledger.canSpend(5)).toBe(true)
    expect(ledger.canSpend(5.01)).toBe(false)
    const paid = await signReceipt(me, { task: 't-1', step: 's1', agent, donor: other.publicKey, price: 0.1 })
    const paid2 = await signReceipt(me, { task: 't-1', step: 's2', agent, donor: other.publicKey, price: 0.2 })
    const earned = await signReceipt(other, { task: 't-9', step: 's1', agent, donor: me.publicKey, price: 1.5 })
    const unrelated = await signReceipt(other, { task: 't-9', step: 's1', agent, donor: (await loadIdentity()).publicKey, price: 9 })
    expect(ledger.add(paid)).toBe(true)
    expect(ledger.add(paid2)).toBe(true)
    expect(ledger.add(paid)).toBe(false) // held once
    expect(ledger.add(earned)).toBe(true)
    expect(ledger.add(unrelated)).toBe(false)
    const c = ledger.credits()
    expect(c).toMatchObject({ earned: 1.5, spent: 0.3, balance: 1.2, available: 6.2 })
    expect(c.receipts).toHaveLength(3)
    expect(() => new Ledger(me.publicKey, -1)).toThrow(RangeError)
  })
})
