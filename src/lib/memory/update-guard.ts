/**
 * A bounded, allocation-free walk over a Yjs update (encoding v1) before it
 * reaches `Y.applyUpdate`. yjs#687 showed that tiny crafted updates can make
 * Yjs allocate huge arrays or loop for a very long time: the decoder trusts
 * counts (`numberOfStructs`, JSON/Any lengths) that the bytes cannot back.
 * Here every count must be covered by the bytes left (each struct, string or
 * value takes at least one byte), lengths and clocks are capped, content types
 * must be known, nesting is bounded and the update must end exactly where its
 * delete set ends. So the walk is linear in the input, and anything it accepts
 * makes Yjs create at most as many structs as the update has bytes.
 *
 * We only ever accept v1 updates from peers; the v2 run-length decoders that
 * #687 mostly abuses are never fed remote bytes.
 */
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import { RejectedUpdateError, type RefusalKind } from './errors.ts'

/** Largest length of one GC/Skip/Deleted run or clock we accept (2^40). */
export const MAX_CLOCK = 2 ** 40
/** Default bound on nesting of one value (ContentAny and ContentJSON alike). */
export const MAX_DEPTH = 32
// Fatal, as lib0's own decoder is: a string that is not UTF-8 is refused here, not thrown by Yjs.
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * What a doc accepts beyond well-formedness. Every structure of every update is
 * bounded: nesting of each value (`maxDepth`, ContentAny and ContentJSON alike)
 * and the bytes of each value (`maxValueBytes`).
 */
export interface UpdatePolicy {
  /** Root type names the doc may contain (others are refused). */
  allowedRoots?: ReadonlySet<string>
  /** Deepest nesting of one value. Default {@link MAX_DEPTH}. */
  maxDepth?: number
  /** Largest encoding of one value (one ContentAny value or one ContentJSON text), in bytes. Default: no bound beyond the update's own size. */
  maxValueBytes?: number
  /** Content types this doc never holds (e.g. the registry holds plain values only: no JSON, strings or nested types). */
  forbiddenContent?: ReadonlySet<ContentKind>
  /**
   * Root maps whose new values the guard decodes for the caller (`UpdateShape.values`), so
   * a check of the values themselves (e.g. the registry's work stamps) refuses an update
   * before Yjs applies it. Only plain values (ContentAny) under a spelt-out key.
   */
  valuesOf?: ReadonlySet<string>
}

/** Yjs content types by name (the refs of the v1 encoding). */
export type ContentKind = 'deleted' | 'json' | 'binary' | 'string' | 'embed' | 'format' | 'type' | 'any'
const CONTENT_KINDS: readonly (ContentKind | undefined)[] = [undefined, 'deleted', 'json', 'binary', 'string', 'embed', 'format', 'type', 'any']

interface Limits {
  depth: number
  valueBytes: number
}

/** Thrown by a partial Reader (see {@link UpdateKeyScanner}) where the bytes so far end: not a verdict. */
const NEED_MORE = Symbol('need more bytes')

class Reader {
  pos = 0
  /** `partial`: the bytes are a prefix of the update, so running out of them throws NEED_MORE instead of refusing. */
  constructor(
    readonly buf: Uint8Array,
    readonly partial = false
  ) {}
  get left(): number {
    return this.buf.length - this.pos
  }
  u8(): number {
    if (this.pos >= this.buf.length) throw this.partial ? NEED_MORE : fail('unexpected end of update')
    return this.buf[this.pos++]!
  }
  varUint(): number {
    let num = 0
    let mult = 1
    for (let i = 0; i < 8; i++) {
      const r = this.u8()
      num += (r & 0x7f) * mult
      if (r < 0x80) return num
      mult *= 128
    }
    throw fail('varint too long')
  }
  varInt(): void {
    for (let i = 0; i < 8; i++) if (this.u8() < 0x80) return
    throw fail('varint too long')
  }
  skip(n: number): void {
    if (n > this.left) throw this.partial ? NEED_MORE : fail('length beyond the end of the update')
    this.pos += n
  }
  count(): number {
    const n = this.varUint()
    if (n > this.left && !this.partial) throw fail('a count larger than the bytes left')
    return n
  }
  bytes(): void {
    this.skip(this.varUint())
  }
  string(): string {
    const n = this.varUint()
    if (n > this.left) throw this.partial ? NEED_MORE : fail('a string longer than the bytes left')
    let s: string
    try {
      s = utf8.decode(this.buf.subarray(this.pos, this.pos + n))
    } catch {
      throw fail('a string that is not UTF-8')
    }
    this.pos += n
    return s
  }
  len(): number {
    const n = this.varUint()
    if (n > MAX_CLOCK) throw fail('a run length beyond 2^40')
    return n
  }
}

/** A refusal of the guard; `refusal` says which bound it broke (most: the update is not well-formed). */
function fail(reason: string, refusal: RefusalKind = 'malformed'): RejectedUpdateError {
  return new RejectedUpdateError(`${refusal === 'malformed' ? 'malformed Yjs update' : 'refused Yjs update'}: ${reason}`, { refusal })
}

function any(r: Reader, depth: number, lim: Limits): void {
  if (depth > lim.depth) throw fail('values nested too deeply', 'too-deep')
  const t = r.u8()
  switch (t) {
    case 127:
    case 126:
    case 121:
    case 120:
      return
    case 125:
      r.varInt()
      return
    case 124:
      r.skip(4)
      return
    case 123:
    case 122:
      r.skip(8)
      return
    case 119:
      r.string() // a string (lib0 readAny)
      return
    case 118: {
      const n = r.count()
      for (let i = 0; i < n; i++) {
        r.string()
        any(r, depth + 1, lim)
      }
      return
    }
    case 117: {
      const n = r.count()
      for (let i = 0; i < n; i++) any(r, depth + 1, lim)
      return
    }
    case 116:
      r.bytes() // a Uint8Array
      return
    default:
      throw fail(`unknown value type ${t}`)
  }
}

/**
 * Nesting of one JSON text, without parsing it: brackets outside strings. A
 * ContentJSON value is JSON.parse'd by Yjs and later walked by recursive code
 * (canonical JSON, structured clone): issue 11 item 1 was a registry record
 * nested 20,000 deep that overflowed the stack of every reader.
 */
function jsonText(r: Reader, lim: Limits): void {
  const n = r.varUint()
  if (n > r.left) throw r.partial ? NEED_MORE : fail('a string longer than the bytes left')
  if (n > lim.valueBytes) throw fail(`a JSON value of ${n} bytes (limit ${lim.valueBytes})`, 'value-too-large')
  const buf = r.buf
  const end = r.pos + n
  let depth = 0
  let inString = false
  for (let i = r.pos; i < end; i++) {
    const c = buf[i]!
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped byte
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > lim.depth) throw fail('JSON nested too deeply', 'too-deep')
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  // Yjs decodes it with a fatal UTF-8 decoder and JSON.parse's it mid-apply: either
  // failing there would throw out of Y.applyUpdate (nesting is already bounded above).
  let text: string
  try {
    text = utf8.decode(buf.subarray(r.pos, end))
  } catch {
    throw fail('a JSON value that is not UTF-8')
  }
  if (text !== 'undefined') {
    try {
      JSON.parse(text)
    } catch {
      throw fail('a JSON value that does not parse')
    }
  }
  r.pos = end
}

/** Walk one item's content; returns how many clock ticks it spans (for the clock cap). */
function content(r: Reader, ref: number, lim: Limits): number {
  switch (ref) {
    case 1:
      return Math.max(1, r.len()) // deleted
    case 2: {
      const n = r.count()
      for (let i = 0; i < n; i++) jsonText(r, lim)
      return Math.max(1, n)
    } // JSON
    case 3:
      r.bytes()
      return 1 // binary
    case 4:
      return Math.max(1, r.string().length) // string: one clock tick per UTF-16 unit
    case 5:
      jsonText(r, lim)
      return 1 // embed
    case 6:
      r.string()
      jsonText(r, lim)
      return 1 // format
    case 7: {
      const typeRef = r.varUint()
      if (typeRef > 6) throw fail('unknown type')
      if (typeRef === 3 || typeRef === 5) r.string()
      return 1
    }
    case 8: {
      const n = r.count()
      for (let i = 0; i < n; i++) {
        const start = r.pos
        any(r, 0, lim)
        if (r.pos - start > lim.valueBytes) throw fail(`a value of ${r.pos - start} bytes (limit ${lim.valueBytes})`, 'value-too-large')
      }
      return Math.max(1, n)
    } // any
    // 9 = subdocument: never used by our docs, and a remote one would make Yjs create and load docs.
    default:
      throw fail(`unknown content type ${ref}`)
  }
}

/** What `checkUpdate` learnt about an update. */
export interface UpdateShape {
  structs: number
  deletes: number
  /** Root type names the update writes to. */
  roots: Set<string>
  /**
   * Per root type, the map keys the update writes with their key spelt out (a
   * struct without origins names its parent and key; one with an origin
   * continues a key the receiver already has). A map key the receiver has never
   * seen can only arrive this way, so these are the keys an update may add.
   */
  keys: Map<string, Set<string>>
  /**
   * The map keys the update makes live: spelt out on a struct with live content (not
   * ContentDeleted), or continued by a live struct from one of the update's own structs that
   * spells them (a key set again after a delete). An honest doc keeps a deleted map entry as a
   * ContentDeleted struct that still spells its key (a retracted or pruned entry), so `keys`
   * may name many more than are live; quotas count `liveKeys` (issue 11: an honest author who
   * retracted and published again, or a peer that pruned forged records, was refused).
   */
  liveKeys: Map<string, Set<string>>
  /**
   * Items the receiver holds (not in the update) that live structs of the update continue,
   * as [client, clock]: a key set again over the receiver's deleted entry spells no key in
   * the update. {@link liveKeysIn} resolves them against the receiver's doc.
   */
  continued: Array<[number, number]>
  /** For the roots in the policy's `valuesOf`: the value each spelt-out key is set to (its last, as Yjs keeps). */
  values: Map<string, ReadonlyMap<string, unknown>>
}

/**
 * The values of one root's spelt-out keys, decoded from the update when first read. The
 * guard walked and bounded each (depth, size) before noting it, so decoding is safe.
 */
class LazyValues implements ReadonlyMap<string, unknown> {
  readonly #update: Uint8Array
  readonly #at = new Map<string, [number, number]>()
  readonly #decoded = new Map<string, unknown>()
  constructor(update: Uint8Array) {
    this.#update = update
  }
  /** A key's (last) ContentAny lies at update[start, end). */
  note(key: string, start: number, end: number): void {
    this.#at.set(key, [start, end])
    this.#decoded.delete(key)
  }
  get size(): number {
    return this.#at.size
  }
  has(key: string): boolean {
    return this.#at.has(key)
  }
  get(key: string): unknown {
    if (this.#decoded.has(key)) return this.#decoded.get(key)
    const range = this.#at.get(key)
    if (range === undefined) return undefined
    const d = decoding.createDecoder(this.#update.subarray(range[0], range[1]))
    const n = decoding.readVarUint(d)
    let value: unknown
    for (let k = 0; k < n; k++) value = decoding.readAny(d)
    this.#decoded.set(key, value)
    return value
  }
  *keys(): MapIterator<string> {
    yield* this.#at.keys()
  }
  *values(): MapIterator<unknown> {
    for (const k of this.#at.keys()) yield this.get(k)
  }
  *entries(): MapIterator<[string, unknown]> {
    for (const k of this.#at.keys()) yield [k, this.get(k)]
  }
  [Symbol.iterator](): MapIterator<[string, unknown]> {
    return this.entries()
  }
  forEach(fn: (value: unknown, key: string, map: ReadonlyMap<string, unknown>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this)
  }
}

/**
 * Walk a v1 update, throwing a {@link RejectedUpdateError} if it is malformed,
 * names a root type outside the policy's `allowedRoots`, nests a value deeper or
 * makes one larger than the policy allows (a set of roots alone is read as
 * `{ allowedRoots }`).
 */
export function checkUpdate(update: Uint8Array, policy?: ReadonlySet<string> | UpdatePolicy): UpdateShape {
  const p: UpdatePolicy = policy instanceof Set ? { allowedRoots: policy } : ((policy as UpdatePolicy | undefined) ?? {})
  const allowedRoots = p.allowedRoots
  const lim: Limits = { depth: p.maxDepth ?? MAX_DEPTH, valueBytes: p.maxValueBytes ?? Infinity }
  const forbidden = p.forbiddenContent
  const r = new Reader(update)
  const roots = new Set<string>()
  const keys = new Map<string, Set<string>>()
  const liveKeys = new Map<string, Set<string>>()
  const chains = new KeyChains()
  const values = new Map<string, LazyValues>()
  const valuesOf = p.valuesOf
  let structs = 0
  const clients = r.count()
  for (let c = 0; c < clients; c++) {
    const n = r.count()
    const client = r.varUint()
    let clock = r.varUint()
    for (let i = 0; i < n; i++) {
      const info = r.u8()
      const ref = info & 0x1f
      let len = 1
      if (ref === 0 || ref === 10) {
        len = r.len()
        if (len === 0) throw fail('an empty struct')
      } else {
        // An origin of the item's own client must come before it: Yjs looks it up among
        // the structs it already integrated and throws "Unexpected case" mid-apply if not.
        let from: [number, number] | undefined
        if (info & 0x80) {
          const [oc, ok] = [r.varUint(), r.varUint()]
          if (oc === client && ok >= clock) throw fail('an origin that does not precede its item')
          from = [oc, ok]
        } // origin (client, clock)
        if (info & 0x40) {
          const [oc, ok] = [r.varUint(), r.varUint()]
          if (oc === client && ok >= clock) throw fail('a right origin that does not precede its item')
          from ??= [oc, ok]
        } // right origin (client, clock)
        let keyed: [string, string] | undefined
        let spelt: [string, string] | undefined
        if ((info & 0xc0) === 0) {
          let root: string | undefined
          if (r.varUint() === 1) {
            root = r.string()
            if (allowedRoots && !allowedRoots.has(root)) throw fail(`root type "${root}" is not part of this document`, 'foreign-root')
            roots.add(root)
          } else {
            r.varUint()
            r.varUint()
          }
          if (info & 0x20) {
            // parentSub: the map key
            if (root === undefined) r.string()
            else {
              const key = r.string()
              addKey(keys, root, key)
              if (ref !== 1) addKey(liveKeys, root, key)
              spelt = [root, key]
              if (ref === 8 && valuesOf?.has(root) === true) keyed = [root, key]
            }
          }
        }
        const kind = CONTENT_KINDS[ref]
        if (kind !== undefined && forbidden?.has(kind) === true) throw fail(`${kind} content is not allowed in this document`, 'forbidden-content')
        const at = r.pos
        len = content(r, ref, lim)
        if (spelt !== undefined) chains.add(client, { start: clock, end: clock + len, root: spelt[0], key: spelt[1], live: ref !== 1 })
        else if (from !== undefined) chains.add(client, { start: clock, end: clock + len, from, live: ref !== 1 })
        // Walked and bounded above, so decoding it later is safe; decoded only when read
        // (a refused update, e.g. over quota, never pays for turning its values into objects).
        if (keyed !== undefined) {
          const m = values.get(keyed[0]) ?? new LazyValues(update)
          values.set(keyed[0], m)
          m.note(keyed[1], at, r.pos)
        }
      }
      clock += len
      if (clock > MAX_CLOCK) throw fail('clock beyond 2^40')
      structs++
    }
  }
  let deletes = 0
  const dsClients = r.count()
  for (let c = 0; c < dsClients; c++) {
    r.varUint()
    const n = r.count()
    for (let i = 0; i < n; i++) {
      const clock = r.varUint()
      const len = r.len()
      // Yjs throws "Unexpected case" on an empty range when it re-encodes the delete set.
      if (len === 0) throw fail('an empty deleted range')
      if (clock + len > MAX_CLOCK) throw fail('deleted range beyond 2^40')
      deletes++
    }
  }
  if (r.left !== 0) throw fail('trailing bytes after the delete set')
  const continued = chains.resolveInto(liveKeys)
  return { structs, deletes, roots, keys, liveKeys, continued, values }
}

/** Clocks [start, end) of one struct: the key it spells out, or the struct it continues (its origin). */
interface Span {
  start: number
  end: number
  root?: string
  key?: string
  from?: [number, number]
  live: boolean
}

/** Where a chain of origins ends (KeyChains). */
type Chained = Span | { external: [number, number] } | null

/**
 * The map key of every struct of an update that continues another struct of the same update
 * (a struct with an origin spells no key: it continues its origin's). An entry set again after
 * it was deleted travels as a ContentDeleted struct that spells the key and a live one that
 * continues it; without this, the live one would be counted nowhere. Linear in the structs
 * (each chain is followed once, memoized), cycles of hostile origins end the walk.
 */
class KeyChains {
  readonly #spans = new Map<number, Span[]>()

  add(client: number, span: Span): void {
    const list = this.#spans.get(client)
    if (list == null) this.#spans.set(client, [span])
    else list.push(span)
  }

  /**
   * Add to `liveKeys` the key of every live struct that continues a spelt-out one of this
   * update; return the items outside the update that live structs continue (once each).
   */
  resolveInto(liveKeys: Map<string, Set<string>>): Array<[number, number]> {
    for (const list of this.#spans.values()) list.sort((a, b) => a.start - b.start)
    const memo = new Map<Span, Chained>()
    const external = new Map<string, [number, number]>()
    for (const list of this.#spans.values()) {
      for (const s of list) {
        if (!s.live || s.key !== undefined) continue
        const end = this.#follow(s, memo)
        if (end == null) continue
        if ('external' in end) external.set(`${end.external[0]}:${end.external[1]}`, end.external)
        else if (end.root !== undefined && end.key !== undefined) addKey(liveKeys, end.root, end.key)
      }
    }
    return [...external.values()]
  }

  #find(client: number, clock: number): Span | undefined {
    const list = this.#spans.get(client)
    if (list == null) return undefined
    let lo = 0
    let hi = list.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const s = list[mid]!
      if (clock < s.start) hi = mid - 1
      else if (clock >= s.end) lo = mid + 1
      else return s
    }
    return undefined
  }

  /**
   * Where the chain of origins from `s` ends: the spelt-out span it continues within the
   * update, the item outside the update it continues, or null (no origin; a cycle).
   */
  #follow(s: Span, memo: Map<Span, Chained>): Chained {
    const path: Span[] = []
    const seen = new Set<Span>()
    let cur: Span | undefined = s
    let out: Chained = null
    while (cur !== undefined) {
      if (cur.key !== undefined) {
        out = cur
        break
      }
      const known = memo.get(cur)
      if (known !== undefined) {
        out = known
        break
      }
      if (seen.has(cur) || cur.from === undefined) break
      seen.add(cur)
      path.push(cur)
      const from: [number, number] = cur.from
      cur = this.#find(from[0], from[1])
      if (cur === undefined) out = { external: from }
    }
    for (const p of path) memo.set(p, out)
    return out
  }
}

/**
 * The keys of `map` (the receiver's root type `root`) that the update makes live: those it
 * spells or continues within itself (`shape.liveKeys`), and those of entries `map` holds that
 * live structs of the update continue. The second kind matters for quotas: an entry deleted
 * here (a tombstone that keeps its key) and set again by a struct whose origin is that
 * tombstone spells no key in the update, so counting `liveKeys` alone let an author who had
 * retracted entries make them all live again past the quota.
 */
export function liveKeysIn(shape: UpdateShape, map: Y.Map<unknown>, root: string): Set<string> {
  const out = new Set(shape.liveKeys.get(root))
  const store = map.doc?.store
  if (store == null) return out
  for (const [client, clock] of shape.continued) {
    // Not held yet: Yjs keeps the struct pending until its origin arrives.
    if (clock >= Y.getState(store, client)) continue
    const item = Y.getItem(store, Y.createID(client, clock))
    if (item instanceof Y.Item && item.parent === map && typeof item.parentSub === 'string') out.add(item.parentSub)
  }
  return out
}

function addKey(map: Map<string, Set<string>>, root: string, key: string): void {
  const set = map.get(root)
  if (set == null) map.set(root, new Set([key]))
  else set.add(key)
}

/** Walk a state vector (as sent in sync step 1): a count, then client/clock pairs. */
export function checkStateVector(sv: Uint8Array): void {
  const r = new Reader(sv)
  const n = r.count()
  for (let i = 0; i < n; i++) {
    r.varUint()
    if (r.varUint() > MAX_CLOCK) throw fail('clock beyond 2^40')
  }
  if (r.left !== 0) throw fail('trailing bytes after the state vector')
}

/** Most bytes the scanner holds back for a struct that has not ended yet; past it, it stops scanning. */
export const SCAN_MAX_CARRY_BYTES = 256 * 1024

/**
 * The map keys of a v1 update's structs as its bytes arrive, prefix by prefix (issue 11,
 * the over-quota attack: 600 entries of one author in a 7.3 MB sync step 2 were received,
 * decoded, hashed and walked whole before the quota refused them). Each struct's root and
 * key go to `onKey` once the struct has fully arrived (with whether its content is live, not
 * ContentDeleted: see {@link UpdateShape.liveKeys}); `onKey` throws to refuse the update
 * there, and `push` rethrows it. Only a doc's admission is checked this way: the complete
 * update still goes through {@link checkUpdate}. A struct larger than
 * {@link SCAN_MAX_CARRY_BYTES}, or bytes this walk cannot read, end the scan (no verdict).
 */
export class UpdateKeyScanner {
  readonly #onKey: (root: string, key: string, live: boolean) => void
  readonly #lim: Limits
  readonly #maxCarry: number
  #carry: Uint8Array = new Uint8Array(0)
  #clients: number | undefined
  #c = 0
  #n = 0
  #i = 0
  #stopped = false

  constructor(onKey: (root: string, key: string, live: boolean) => void, policy: UpdatePolicy = {}, maxCarry = SCAN_MAX_CARRY_BYTES) {
    this.#onKey = onKey
    this.#lim = { depth: policy.maxDepth ?? MAX_DEPTH, valueBytes: policy.maxValueBytes ?? Infinity }
    this.#maxCarry = maxCarry
  }

  /** True once the struct section was read to its end, or the scan gave up. */
  get done(): boolean {
    return this.#stopped
  }

  /** Take the next bytes of the update; throws what `onKey` throws. */
  push(bytes: Uint8Array): void {
    if (this.#stopped) return
    let buf = bytes
    if (this.#carry.byteLength > 0) {
      buf = new Uint8Array(this.#carry.byteLength + bytes.byteLength)
      buf.set(this.#carry)
      buf.set(bytes, this.#carry.byteLength)
    }
    const r = new Reader(buf, true)
    let mark = 0
    let refused = false
    try {
      if (this.#clients === undefined) {
        this.#clients = r.varUint()
        mark = r.pos
      }
      while (this.#c < this.#clients) {
        if (this.#i >= this.#n) {
          const n = r.varUint()
          r.varUint() // client
          r.varUint() // first clock
          this.#n = n
          this.#i = 0
          mark = r.pos
          if (n === 0) this.#c++
          continue
        }
        const key = this.#struct(r)
        this.#i++
        if (this.#i >= this.#n) this.#c++
        mark = r.pos
        if (key !== undefined) {
          try {
            this.#onKey(key[0], key[1], key[2])
          } catch (err) {
            refused = true
            throw err
          }
        }
      }
      this.#stop()
    } catch (err) {
      // A refusal from onKey has stopped the scan and goes to the caller; a malformed prefix
      // ends the scan without a verdict (checkUpdate gives it on the whole update).
      if (refused) {
        this.#stop()
        throw err
      }
      if (err !== NEED_MORE) {
        this.#stop()
        return
      }
      const rest = buf.byteLength - mark
      if (rest > this.#maxCarry) this.#stop()
      else this.#carry = buf.slice(mark)
    }
  }

  #stop(): void {
    this.#stopped = true
    this.#carry = new Uint8Array(0)
  }

  /** One struct (as checkUpdate walks it); its root, map key and whether it is live, when it spells them out. */
  #struct(r: Reader): [string, string, boolean] | undefined {
    const info = r.u8()
    const ref = info & 0x1f
    let key: [string, string, boolean] | undefined
    if (ref === 0 || ref === 10) {
      r.len()
      return undefined
    }
    if (info & 0x80) {
      r.varUint()
      r.varUint()
    }
    if (info & 0x40) {
      r.varUint()
      r.varUint()
    }
    if ((info & 0xc0) === 0) {
      let root: string | undefined
      if (r.varUint() === 1) root = r.string()
      else {
        r.varUint()
        r.varUint()
      }
      if (info & 0x20) {
        const sub = r.string()
        if (root !== undefined) key = [root, sub, ref !== 1]
      }
    }
    content(r, ref, this.#lim)
    return key
  }
}
