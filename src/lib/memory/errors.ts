/**
 * Errors of the memory layer. One subclass per failure, each with a stable `name`
 * and a sentence a user can act on (STYLE.md "Errors").
 */
import { ZeroStateError } from '../core/index.ts'

export class MemoryError extends ZeroStateError {
  override readonly name: string = 'MemoryError'
  static override readonly defaultMessage: string = 'The shared memory layer failed'
}

/**
 * Why a remote update was refused (issue 11). Some refusals prove the sender hostile: an honest
 * peer runs the same guard on every update it stores and prunes what it cannot verify, so it
 * never holds, and never sends, what they name ({@link HOSTILE_REFUSALS}). The others can come
 * from an honest peer relaying what it holds (an author's entries from two partitions).
 */
export type RefusalKind =
  /** Not a well-formed Yjs v1 update (or state vector), or one Yjs would throw on. */
  | 'malformed'
  /** Names a root type the doc does not have. */
  | 'foreign-root'
  /** Holds a content type the doc never holds (e.g. JSON or text in the registry). */
  | 'forbidden-content'
  /** A value nested deeper than the doc's bound. */
  | 'too-deep'
  /** One value larger than the doc's bound. */
  | 'value-too-large'
  /** The update's own live entries of one author (or namespaces of one owner) exceed the quota. */
  | 'over-quota-alone'
  /** Over the quota only with what this tab already holds (or with deleted keys): an honest peer may relay it. */
  | 'over-quota'
  /** A registry entry without its publishing work stamp. */
  | 'missing-work'
  /** The trial apply did not finish in time (a busy machine can cause it too). */
  | 'deadline'
  /** Anything else: Yjs threw applying it here, the checker failed. */
  | 'unknown'

/** The refusals no honest peer running this code can cause: one is enough to block the sender. */
export const HOSTILE_REFUSALS: ReadonlySet<RefusalKind> = new Set<RefusalKind>([
  'malformed',
  'foreign-root',
  'forbidden-content',
  'too-deep',
  'value-too-large',
  'over-quota-alone',
  'missing-work'
])

/** A peer asked for the doc's state (sync step 1) more often than its budget (MemoryLimits.maxStep1PerMinute). */
export class SyncRequestOverBudgetError extends MemoryError {
  override readonly name: string = 'SyncRequestOverBudgetError'
  static override readonly defaultMessage: string = 'A peer asked for the document state too often; its requests are refused for a while'
}

/** Options of {@link RejectedUpdateError}: why it was refused. */
export interface RejectedUpdateOptions extends ErrorOptions {
  refusal?: RefusalKind
}

/** A remote Yjs update was refused: too large, malformed, or it did not finish in time. */
export class RejectedUpdateError extends MemoryError {
  override readonly name: string = 'RejectedUpdateError'
  static override readonly defaultMessage: string = 'A peer sent a document update that was refused as malformed or too large'
  /** The refusal of this class when the thrower names none. */
  static readonly defaultRefusal: RefusalKind = 'unknown'
  /** Why it was refused; {@link provesHostile} reads it. */
  readonly refusal: RefusalKind
  constructor(message?: string, options?: RejectedUpdateOptions) {
    super(message, options)
    this.refusal = options?.refusal ?? (new.target as typeof RejectedUpdateError).defaultRefusal
  }
}

/**
 * The refusal of an update over a quota: its own live entries of one author (namespaces of one
 * owner) over it prove its sender hostile, since an honest peer prunes to the quota and a deleted
 * entry travels as a ContentDeleted struct, not live; over it only with what this tab holds (two
 * partitions' records relayed by an honest peer) does not.
 */
export function overQuotaRefusal(live: number, quota: number): RefusalKind {
  return live > quota ? 'over-quota-alone' : 'over-quota'
}

/** True when `err` is a refusal that no honest peer running this code can cause (see {@link HOSTILE_REFUSALS}). */
export function provesHostile(err: unknown): boolean {
  return err instanceof RejectedUpdateError && HOSTILE_REFUSALS.has(err.refusal)
}

/** A remote update took longer than its deadline to check (a yjs#687-style payload). */
export class UpdateDeadlineError extends RejectedUpdateError {
  override readonly name: string = 'UpdateDeadlineError'
  static override readonly defaultMessage: string = 'A peer sent a document update that took too long to check; it was refused'
  static override readonly defaultRefusal: RefusalKind = 'deadline'
}

/** An author already has as many registry entries as the limit allows. */
export class RegistryQuotaError extends MemoryError {
  override readonly name: string = 'RegistryQuotaError'
  static override readonly defaultMessage = 'This author has published the maximum number of agents; retract one first'
}

/** A remote update would give an author more registry entries than the quota: refused whole at the guard. */
export class RegistryQuotaExceededError extends RejectedUpdateError {
  override readonly name: string = 'RegistryQuotaExceededError'
  static override readonly defaultMessage: string = 'The update would give one author more registry entries than the quota allows'
  static override readonly defaultRefusal: RefusalKind = 'over-quota'
}

/** A remote update would give an owner more namespace records than the quota: refused whole at the guard (issue 11 item 3). */
export class NamespaceQuotaExceededError extends RejectedUpdateError {
  override readonly name: string = 'NamespaceQuotaExceededError'
  static override readonly defaultMessage: string = 'The update would give one owner more shared namespaces than the quota allows'
  static override readonly defaultRefusal: RefusalKind = 'over-quota'
}

/** A remote update adds a registry entry without its publishing work stamp: refused whole at the guard. */
export class RegistryWorkMissingError extends RejectedUpdateError {
  override readonly name: string = 'RegistryWorkMissingError'
  static override readonly defaultMessage: string = 'The update adds a registry entry without the publishing work it must carry'
  static override readonly defaultRefusal: RefusalKind = 'missing-work'
}

/** A registry entry, reputation record or memory value is larger than allowed. */
export class EntryTooLargeError extends MemoryError {
  override readonly name: string = 'EntryTooLargeError'
  static override readonly defaultMessage = 'The entry is larger than the registry allows; shrink the manifest'
}

/** An entry does not match its schema (manifest not an object, bad id, …). */
export class InvalidEntryError extends MemoryError {
  override readonly name: string = 'InvalidEntryError'
  static override readonly defaultMessage = 'The entry is not valid; check its id, manifest and hash'
}

/** No entry with that id by this author exists (for retract/addHolder). */
export class EntryNotFoundError extends MemoryError {
  override readonly name: string = 'EntryNotFoundError'
  static override readonly defaultMessage = 'No such agent in the registry'
}

/** A namespace name is invalid, or it exists with another mode. */
export class NamespaceError extends MemoryError {
  override readonly name: string = 'NamespaceError'
  static override readonly defaultMessage = 'The namespace name is invalid or it already exists with another mode'
}

/** An encrypted namespace was used without its key, or the key is wrong. */
export class MissingKeyError extends MemoryError {
  override readonly name: string = 'MissingKeyError'
  static override readonly defaultMessage: string = 'This namespace is encrypted; supply its key with createNamespace(ns, { mode: "encrypted", key })'
}

/** A value cannot be stored: not JSON, or too large. */
export class InvalidValueError extends MemoryError {
  override readonly name: string = 'InvalidValueError'
  static override readonly defaultMessage = 'The value must be JSON (objects, arrays, strings, numbers, booleans, null) and under the size limit'
}

/** The memory layer is not started, or has been stopped. */
export class MemoryNotStartedError extends MemoryError {
  override readonly name: string = 'MemoryNotStartedError'
  static override readonly defaultMessage = 'The memory layer is not running; call start() first'
}

/** Saving to IndexedDB failed (quota, or the browser refused). */
export class PersistenceError extends MemoryError {
  override readonly name: string = 'PersistenceError'
  static override readonly defaultMessage = "Saving to this browser's storage failed; free some space and retry"
}

/** The key given for an encrypted namespace is not its key (checked against the namespace's key-check value). */
export class WrongKeyError extends MissingKeyError {
  override readonly name: string = 'WrongKeyError'
  static override readonly defaultMessage: string = 'This key does not decrypt this namespace; check it with the person who shared it'
}

/** This profile may not write to the namespace: only its owner and the writers the owner granted may. */
export class NotWriterError extends MemoryError {
  override readonly name: string = 'NotWriterError'
  static override readonly defaultMessage = 'You are not a writer of this namespace; ask its owner to grant you'
}

/** Only the namespace's owner may change its writers. */
export class NotOwnerError extends MemoryError {
  override readonly name: string = 'NotOwnerError'
  static override readonly defaultMessage = "Only the namespace's owner can change who may write to it"
}

/** An owner already has as many namespaces as the limit allows. */
export class NamespaceQuotaError extends MemoryError {
  override readonly name: string = 'NamespaceQuotaError'
  static override readonly defaultMessage = 'You own the maximum number of shared namespaces; reuse one'
}
