/**
 * Credits. For every accepted (verified) result the submitter signs a receipt
 * {task, step, agent, donor user, price, time} and sends it to the donor, which
 * keeps it: anyone can check it with the submitter's public key. A profile's
 * ledger: earned = receipts held naming it as donor, spent = receipts it issued,
 * balance = earned − spent. Nothing is minted: a new profile starts at 0 and may
 * spend at most a small, configurable allowance before it has earned anything.
 */
import * as v from 'valibot'
import { signJson, verifyJson, type Identity } from '../../core/index.ts'
import { InvalidReceiptError } from './errors.ts'

const PublicKey = v.pipe(v.string(), v.regex(/^ed25519:[A-Za-z0-9_-]{43}$/))
const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(128))

/** What the submitter signs. */
export const ReceiptBodySchema = v.strictObject({
  kind: v.literal('zerostate/receipt/1'),
  task: Id,
  step: Id,
  agent: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  /** The donor's user (profile key). */
  donor: PublicKey,
  /** The submitter's user, who signs. */
  submitter: PublicKey,
  price: v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1e9)),
  time: v.pipe(v.number(), v.integer(), v.minValue(0))
})
/** A receipt's signed body. */
export type ReceiptBody = v.InferOutput<typeof ReceiptBodySchema>

/** A signed receipt. */
export const ReceiptSchema = v.strictObject({ ...ReceiptBodySchema.entries, signature: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{86}$/)) })
/** A signed receipt. */
export type Receipt = v.InferOutput<typeof ReceiptSchema>

/** A receipt's identity: one per (submitter, task, step, donor). */
export function receiptId(r: Pick<ReceiptBody, 'submitter' | 'task' | 'step' | 'donor'>): string {
  return `${r.submitter}/${r.task}/${r.step}/${r.donor}`
}

/** Sign a receipt as the submitter (`identity`). */
export async function signReceipt(identity: Identity, r: Omit<ReceiptBody, 'kind' | 'submitter' | 'time'> & { time?: number }): Promise<Receipt> {
  const body: ReceiptBody = {
    kind: 'zerostate/receipt/1',
    task: r.task,
    step: r.step,
    agent: r.agent,
    donor: r.donor,
    submitter: identity.publicKey,
    price: r.price,
    time: r.time ?? Date.now()
  }
  const parsed = v.safeParse(ReceiptBodySchema, body)
  if (!parsed.success) throw new InvalidReceiptError(`cannot sign this receipt: ${v.summarize(parsed.issues)}`)
  return { ...body, signature: await signJson(identity, body) }
}

/** Parse and verify a receipt from anywhere; throws `InvalidReceiptError` saying why not. */
export async function verifyReceipt(value: unknown): Promise<Receipt> {
  const r = v.safeParse(ReceiptSchema, value)
  if (!r.success) throw new InvalidReceiptError(`the receipt does not match its schema: ${v.summarize(r.issues)}`)
  const { signature, ...body } = r.output
  if (body.donor === body.submitter) throw new InvalidReceiptError('a receipt cannot pay its own signer')
  if (!(await verifyJson(body.submitter, body, signature))) throw new InvalidReceiptError('the receipt signature does not match its submitter')
  return r.output
}

/** `credits()` (API.md). */
export interface Credits {
  balance: number
  earned: number
  spent: number
  /** What may still be spent: balance + allowance (never below 0). */
  available: number
  allowance: number
  receipts: Receipt[]
}

/** One profile's ledger (the receipts it holds and issued). */
export class Ledger {
  readonly #self: string
  readonly #allowance: number
  readonly #receipts = new Map<string, Receipt>()
  #version = 0

  /** `allowance`: what a profile may spend beyond what it earned (default {@link DEFAULT_ALLOWANCE}). */
  constructor(self: string, allowance = DEFAULT_ALLOWANCE) {
    if (!(allowance >= 0) || !Number.isFinite(allowance)) throw new RangeError(`an allowance must be a finite number ≥ 0, got ${allowance}`)
    this.#self = self
    this.#allowance = allowance
  }

  get version(): number {
    return this.#version
  }

  /** Keep a verified receipt this profile issued or earned; false when it is not ours or already held. */
  add(r: Receipt): boolean {
    if (r.donor !== this.#self && r.submitter !== this.#self) return false
    const id = receiptId(r)
    if (this.#receipts.has(id)) return false
    this.#receipts.set(id, r)
    this.#version++
    return true
  }

  credits(): Credits {
    let earned = 0
    let spent = 0
    for (const r of this.#receipts.values()) {
      if (r.donor === this.#self) earned += r.price
      if (r.submitter === this.#self) spent += r.price
    }
    earned = round(earned)
    spent = round(spent)
    const balance = round(earned - spent)
    return {
      balance,
      earned,
      spent,
      allowance: this.#allowance,
      available: Math.max(0, round(balance + this.#allowance)),
      receipts: [...this.#receipts.values()].sort((a, b) => b.time - a.time)
    }
  }

  /** Whether `amount` more can be spent now. */
  canSpend(amount: number): boolean {
    return amount <= this.credits().available + 1e-9
  }

  /** Every receipt held (for persistence). */
  all(): Receipt[] {
    return [...this.#receipts.values()]
  }
}

/** What a new profile may spend before it has earned anything, in credits (a few runs of a bundled agent). */
export const DEFAULT_ALLOWANCE = 10

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6
}
