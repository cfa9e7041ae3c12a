/**
 * Media in this profile's task history (issue 14): a step that returns bytes (an image, audio, a
 * file) keeps them, with their media type, in IndexedDB beside the journal, which holds JSON only;
 * a task whose input is bytes (a file or image from the Submit page) keeps its input the same way,
 * under {@link INPUT_MEDIA_KEY}, with the same caps. One output may be at most `MAX_KEPT_MEDIA_BYTES`; all of them together at most
 * `MEDIA_STORE_BYTES`, the oldest dropped first. An output over the cap is not kept, and the
 * journal says so (`data.mediaNotKept`), so the task page can say why it is missing after a reload.
 */
import { logger } from '../core/index.ts'

const log = logger('app:task-media')

/** The largest single output kept (bytes). */
export const MAX_KEPT_MEDIA_BYTES = 8 * 1024 * 1024
/** All kept outputs together (bytes); the oldest go first. */
export const MEDIA_STORE_BYTES = 96 * 1024 * 1024

/** One kept output. */
export interface KeptMedia {
  bytes: Uint8Array
  /** The media type the bytes name (their magic numbers), application/octet-stream when unknown. */
  mediaType: string
}

/** Where media outputs are kept. */
export interface TaskMediaStore {
  /** Keep one step's output (over the cap: rejected with a sentence, nothing kept). */
  put(taskId: string, stepId: string, media: KeptMedia): Promise<void>
  /** The kept outputs of a task, by step id. */
  get(taskId: string): Promise<Map<string, KeptMedia>>
}

const ascii = (b: Uint8Array, at: number, s: string): boolean => {
  if (b.byteLength < at + s.length) return false
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false
  return true
}

/** The media type of bytes from their first bytes (the formats the media agents write, and the common others). */
export function mediaTypeOf(b: Uint8Array): string {
  if (b[0] === 0x89 && ascii(b, 1, 'PNG')) return 'image/png'
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg'
  if (ascii(b, 0, 'GIF8')) return 'image/gif'
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'image/webp'
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WAVE')) return 'audio/wav'
  if (ascii(b, 0, 'BM') && b.byteLength > 26) return 'image/bmp'
  if (ascii(b, 0, 'OggS')) return 'audio/ogg'
  if (ascii(b, 0, '%PDF-')) return 'application/pdf'
  return 'application/octet-stream'
}

/** The bytes of an output that is bytes (a Uint8Array, or another view or ArrayBuffer), else undefined. */
export function outputBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  return undefined
}

/** "12.3 MiB". */
export function sizeText(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`
}

/** The sentence for an output over the cap. */
export function tooBigText(bytes: number): string {
  return `This output (${sizeText(bytes)}) is larger than the ${sizeText(MAX_KEPT_MEDIA_BYTES)} the task history keeps, so it was not saved: it was shown while the task ran. Run the task again to see it.`
}

/** The key a task's byte input is kept under, beside its steps' outputs (no plan step id starts with '#'). */
export const INPUT_MEDIA_KEY = '#input'

/** The sentence for an input over the cap. */
export function inputTooBigText(bytes: number): string {
  return `This task's input (${sizeText(bytes)}) is larger than the ${sizeText(MAX_KEPT_MEDIA_BYTES)} the task history keeps, so it was not saved.`
}

/** A task input that is bytes (a Blob or File read, a Uint8Array or other view), with its size; undefined for anything else. */
export async function inputBytes(input: unknown): Promise<{ bytes?: Uint8Array; size: number } | undefined> {
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    // Over the cap it is not read at all.
    return input.size > MAX_KEPT_MEDIA_BYTES ? { size: input.size } : { bytes: new Uint8Array(await input.arrayBuffer()), size: input.size }
  }
  const bytes = outputBytes(input)
  return bytes == null ? undefined : { bytes, size: bytes.byteLength }
}

/**
 * A file input as the Submit page sends it to the media agents: one line of JSON options, a newline,
 * then the file (`{"maxSide":96}\n<PNG>`); anything else is all file. Only a leading JSON object
 * line (within 4 KiB) counts as options.
 */
export function splitOptionsLine(bytes: Uint8Array): { options?: string; file: Uint8Array } {
  if (bytes[0] !== 0x7b) return { file: bytes }
  const nl = bytes.subarray(0, 4096).indexOf(0x0a)
  if (nl < 0) return { file: bytes }
  try {
    const line = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, nl))
    const value: unknown = JSON.parse(line)
    if (value == null || typeof value !== 'object' || Array.isArray(value)) return { file: bytes }
    return { options: line, file: bytes.subarray(nl + 1) }
  } catch {
    return { file: bytes }
  }
}

/** In memory (tests, and a profile that does not persist). */
export class MemoryTaskMedia implements TaskMediaStore {
  readonly #items = new Map<string, KeptMedia & { taskId: string; stepId: string }>()
  async put(taskId: string, stepId: string, media: KeptMedia): Promise<void> {
    if (media.bytes.byteLength > MAX_KEPT_MEDIA_BYTES) throw new Error(tooBigText(media.bytes.byteLength))
    const key = `${taskId}\u0000${stepId}`
    this.#items.delete(key)
    this.#items.set(key, { taskId, stepId, bytes: media.bytes.slice(), mediaType: media.mediaType })
    let total = 0
    for (const v of this.#items.values()) total += v.bytes.byteLength
    for (const [k, v] of this.#items) {
      if (total <= MEDIA_STORE_BYTES) break
      this.#items.delete(k)
      total -= v.bytes.byteLength
    }
  }
  async get(taskId: string): Promise<Map<string, KeptMedia>> {
    const out = new Map<string, KeptMedia>()
    for (const v of this.#items.values()) if (v.taskId === taskId) out.set(v.stepId, { bytes: v.bytes, mediaType: v.mediaType })
    return out
  }
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error)
  })
}

interface Row {
  key: string
  taskId: string
  stepId: string
  bytes: Uint8Array
  mediaType: string
  size: number
  savedAt: number
}

/** In this profile's IndexedDB (`zerostate-task-media`), shared by its tabs. */
export class IndexedDbTaskMedia implements TaskMediaStore {
  readonly #dbName: string
  #db: Promise<IDBDatabase> | undefined
  constructor(dbName = 'zerostate-task-media') {
    this.#dbName = dbName
  }

  #open(): Promise<IDBDatabase> {
    this.#db ??= new Promise((resolve, reject) => {
      const req = indexedDB.open(this.#dbName, 1)
      req.onupgradeneeded = () => {
        // The bytes, and beside them each output's size and age: eviction reads only the latter.
        req.result.createObjectStore('outputs', { keyPath: 'key' }).createIndex('taskId', 'taskId')
        req.result.createObjectStore('sizes', { keyPath: 'key' }).createIndex('savedAt', 'savedAt')
      }
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    return this.#db
  }

  async put(taskId: string, stepId: string, media: KeptMedia): Promise<void> {
    const size = media.bytes.byteLength
    if (size > MAX_KEPT_MEDIA_BYTES) throw new Error(tooBigText(size))
    const db = await this.#open()
    const key = `${taskId}\u0000${stepId}`
    const savedAt = Date.now()
    const row: Row = { key, taskId, stepId, bytes: media.bytes.slice(), mediaType: media.mediaType, size, savedAt }
    const tx = db.transaction(['outputs', 'sizes'], 'readwrite')
    tx.objectStore('outputs').put(row)
    const sizes = tx.objectStore('sizes')
    sizes.put({ key, size, savedAt })
    // Over the store's cap: the oldest outputs go, newest kept first.
    const all = (await request(sizes.index('savedAt').getAll())) as Array<{ key: string; size: number }>
    let total = size
    for (const s of all.reverse()) {
      if (s.key === key) continue
      total += s.size
      if (total > MEDIA_STORE_BYTES) {
        sizes.delete(s.key)
        tx.objectStore('outputs').delete(s.key)
      }
    }
    await done(tx)
  }

  async get(taskId: string): Promise<Map<string, KeptMedia>> {
    const out = new Map<string, KeptMedia>()
    try {
      const db = await this.#open()
      const rows = (await request(db.transaction('outputs').objectStore('outputs').index('taskId').getAll(taskId))) as Row[]
      for (const r of rows) if (r.bytes instanceof Uint8Array && r.bytes.byteLength === r.size) out.set(r.stepId, { bytes: r.bytes, mediaType: r.mediaType })
    } catch (err) {
      log.error('could not read the media outputs of task %s: %s', taskId, (err as Error).message)
    }
    return out
  }
}
