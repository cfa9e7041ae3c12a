import { DEFAULT_PUBLISH_WORK_BITS } from './publish-work.ts'

/** Limits of the memory layer; every one can be overridden through `createMemoryLayer({ limits })`. */
export interface MemoryLimits {
  /** Largest incremental update accepted from a peer, in bytes. Default 1 MiB. */
  maxUpdateBytes: number
  /** Largest sync-step-2 answer (a whole doc's missing state) accepted from a peer. Default 32 MiB. */
  maxSyncBytes: number
  /** Deadline for checking one remote update on a scratch doc, in ms. Default 2000. */
  checkDeadlineMs: number
  /** Sync payloads above this many bytes are checked in the worker (below: structural check only). Default 64 KiB. */
  workerCheckAboveBytes: number
  /** Rejected updates from one peer before it is hung up on. Default 3. */
  maxStrikes: number
  /** Registry entries per author. Default 256. */
  maxEntriesPerAuthor: number
  /** Bytes of one signed registry entry (canonical JSON). Default 16 KiB. */
  maxEntryBytes: number
  /**
   * Proof of work every registry entry carries (hashcash over its signature, `publish-work.ts`):
   * leading zero bits of sha-256. Entries with less are refused by readers; publishing mints it.
   * Default 16 (2^16 hashes to publish, one to check).
   */
  publishWorkBits: number
  /** Holder peer ids kept per entry. Default 32. */
  maxHoldersPerEntry: number
  /** Reputation records per publisher. Default 1024. */
  maxReputationsPerPublisher: number
  /** Bytes of one memory value (JSON). Default 256 KiB. */
  maxValueBytes: number
  /** Shared and encrypted namespaces one owner may create; later ones are ignored by every reader. Default 64. */
  maxNamespacesPerOwner: number
  /** PBKDF2-SHA-256 iterations for passphrase keys of new encrypted namespaces. Default 600,000 (OWASP 2023). */
  pbkdf2Iterations: number
  /** Re-run the state-vector exchange on every channel this often (anti-entropy), in ms. 0 = never. Default 15000. */
  resyncIntervalMs: number
  /**
   * Sync step-1 requests (a state vector, answered with all the asker lacks) one peer may send
   * on one doc's channel per minute; more are refused and struck. An honest peer sends one on
   * opening and one per anti-entropy round (at most every `resyncIntervalMs`). Default 12.
   */
  maxStep1PerMinute: number
  /** IndexedDB write batching delay, in ms. Default 50. */
  persistDelayMs: number
  /** Stored update records per doc before they are merged into one (compaction). Default 200. */
  compactAfterRecords: number
}

/** The defaults of {@link MemoryLimits}. */
export const DEFAULT_LIMITS: Readonly<MemoryLimits> = Object.freeze({
  maxUpdateBytes: 1024 * 1024,
  maxSyncBytes: 32 * 1024 * 1024,
  checkDeadlineMs: 2000,
  workerCheckAboveBytes: 64 * 1024,
  maxStrikes: 3,
  maxEntriesPerAuthor: 256,
  maxEntryBytes: 16 * 1024,
  publishWorkBits: DEFAULT_PUBLISH_WORK_BITS,
  maxHoldersPerEntry: 32,
  maxReputationsPerPublisher: 1024,
  maxValueBytes: 256 * 1024,
  maxNamespacesPerOwner: 64,
  pbkdf2Iterations: 600_000,
  resyncIntervalMs: 15_000,
  maxStep1PerMinute: 12,
  persistDelayMs: 50,
  compactAfterRecords: 200
})

/** Name of the registry document. */
export const REGISTRY_DOC = 'registry'
/** Name of the (synced) index of shared and encrypted namespaces. */
export const MEMORY_INDEX_DOC = 'memory-index'
/** Name of this profile's task journal (private: never synced). */
export const JOURNAL_DOC = 'journal'
/** This profile's audit log (private, never synced to peers). */
export const AUDIT_DOC = 'audit'
/** Name of this profile's private settings doc (private namespaces, saved keys). */
export const LOCAL_DOC = 'local'
/** Prefix of private namespace docs, and of shared ones from before owners (read-only): `memory/<namespace>`. */
export const MEMORY_DOC_PREFIX = 'memory/'
/** Prefix of owned namespace docs: `ns/<owner key, base64url>/<namespace>`. */
export const NAMESPACE_DOC_PREFIX = 'ns/'
/** A namespace name: 1–64 of letters, digits, `-`, `_`, `.`, `:`. */
export const NAMESPACE_RE = /^[A-Za-z0-9_.:-]{1,64}$/
