import { beforeAll, describe, expect, it } from 'vitest'
import { loadIdentity, type Identity } from '../../core/index.ts'
import { CreditLimitError } from './errors.ts'
import { Ledger, signReceipt } from './receipts.ts'
import { DailyBudgetExceededError, SpendingGuard, checkLimits, startOfDay, verificationFactor } from './spending.ts'

const agent = 'c'.repeat(64)
let me: Identity
let other: Identity
beforeAll(async () => {
  me = await loadIdentity()
  other = await loadIdentity()
})

/** A ledger of `me` and a guard over it, at a fixed clock. */
function setup(limits: { allowance?: number; dailyBudget?: number } = {}, now = new Date(2026, 10, 30, 15, 0).getTime()) {
  const ledger = new Ledger(me.publicKey)
  const guard = new SpendingGuard({ self: me.publicKey, credits: () => ledger.credits(), limits, now: () => now })
  let n = 0
  /** `me` pays `price` at `time` (a receipt it issued). */
  const spend = async (price: number, time = now) =>
    ledger.add(await signReceipt(me, { task: `t${n++}`, step: 's1', agent, donor: other.publicKey, price, time }))
  /** `me` is paid `price` (a receipt it holds). */
  const earn = async (price: number) => ledger.add(await signReceipt(other, { task: `e${n++}`, step: 's1', agent, donor: me.publicKey, price, time: now }))
  return { ledger, guard, spend, earn, now }
}

describe('spending: allowance and daily budget', () => {
  it('a new profile may spend its allowance and no more; what it earns raises the limit', async () => {
    const s = setup({ allowance: 10 })
    expect(s.guard.state()).toMatchObject({ allowance: 10, spentToday: 0, reserved: 0, available: 10 })
    await s.spend(9)
    expect(s.guard.state().available).toBe(1)
    expect(() => s.guard.authorize(2, 'The task "x"')).toThrow(CreditLimitError)
    expect(() => s.guard.authorize(2, 'The task "x"')).toThrow(/may spend only 1 more \(balance -9 \+ allowance 10\)/)
    const release = s.guard.authorize(1, 'The task "x"')
    release()
    await s.earn(5)
    expect(s.guard.state().available).toBe(6)
    expect(() => s.guard.authorize(6, 'The task "x"')).not.toThrow()
  })

  it('tasks running at once hold their estimates, so together they cannot pass the allowance', () => {
    const s = setup({ allowance: 3 })
    const a = s.guard.authorize(2, 'A')
    expect(() => s.guard.authorize(2, 'B')).toThrow(/held by tasks running now/)
    a()
    a() // releasing twice releases once
    expect(s.guard.state().reserved).toBe(0)
    const b = s.guard.authorize(2, 'B')
    expect(s.guard.state()).toMatchObject({ reserved: 2, available: 1 })
    b()
  })

  it('the daily budget counts only what was paid since local midnight', async () => {
    const s = setup({ allowance: 1000, dailyBudget: 5 })
    await s.spend(100, startOfDay(s.now) - 1) // yesterday
    await s.spend(4)
    expect(s.guard.spentToday()).toBe(4)
    expect(s.guard.state().available).toBe(1)
    expect(() => s.guard.authorize(2, 'The task "y"')).toThrow(DailyBudgetExceededError)
    expect(() => s.guard.authorize(2, 'The task "y"')).toThrow(/4 of today's budget of 5 are spent/)
    s.guard.authorize(1, 'The task "y"')()
    // Removing the daily budget leaves only the allowance.
    s.guard.setLimits({ dailyBudget: undefined })
    expect(s.guard.limits.dailyBudget).toBeUndefined()
    expect(() => s.guard.authorize(2, 'The task "y"')).not.toThrow()
  })

  it('a zero estimate always passes; bad limits are refused with RangeError', () => {
    const s = setup({ allowance: 0, dailyBudget: 0 })
    expect(() => s.guard.authorize(0, 'free')).not.toThrow()
    expect(() => s.guard.authorize(0.01, 'paid')).toThrow(DailyBudgetExceededError)
    expect(() => checkLimits({ allowance: -1 })).toThrow(RangeError)
    expect(() => checkLimits({ dailyBudget: Number.NaN })).toThrow(/daily budget/)
    expect(() => s.guard.setLimits({ allowance: Infinity })).toThrow(RangeError)
    expect(s.guard.limits.allowance).toBe(0)
  })

  it('counts one check per step unless verification is off', () => {
    expect(verificationFactor('none')).toBe(1)
    expect(verificationFactor('adaptive')).toBe(2)
    expect(verificationFactor(undefined)).toBe(2)
    expect(verificationFactor('always')).toBe(2)
  })
})
