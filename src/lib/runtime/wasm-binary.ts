/**
 * Just enough of the WebAssembly binary format (core spec §5) to check a
 * module's imports and exports against its ABI and to cap its own memory
 * before it is compiled. A host `WebAssembly.Memory` with a `maximum` only caps
 * modules that import memory (FIELD-NOTES); real programs declare their own, so
 * the memory section (id 5) is rewritten to carry the cap as its maximum.
 */
import { JSON_V1_ALLOWED_IMPORTS, JSON_V1_IMPORT_MODULE, WASI_IMPORT_MODULE, WASM_PAGE_BYTES, type WasmAbi } from './constants.ts'
import { AgentMemoryLimitError, ForbiddenImportError, InvalidModuleError } from './errors.ts'
import { TOOL_IMPORT_MODULE, TOOL_IMPORT_NAMES } from './tool-bridge.ts'

/** External kinds of imports and exports. */
export const EXTERN_KIND = { function: 0, table: 1, memory: 2, global: 3, tag: 4 } as const
const KIND_NAMES = ['function', 'table', 'memory', 'global', 'tag'] as const

const SECTION_IMPORT = 2
const SECTION_MEMORY = 5
const SECTION_EXPORT = 7

/** One import or export as listed in the binary. */
export interface ExternEntry {
  module?: string
  name: string
  kind: string
}

/** Memory limits as declared, in pages. */
export interface MemoryLimits {
  min: number
  max?: number
  shared: boolean
  memory64: boolean
}

/** What the parser found in a module. */
export interface ModuleInfo {
  imports: ExternEntry[]
  exports: ExternEntry[]
  memories: MemoryLimits[]
  /** Where the memory section sits: [start of section id, end of payload). */
  memorySection?: { start: number; end: number }
  /** Where the import section sits, and where its entries start (after the count). */
  importSection?: { start: number; end: number; entries: number }
  /** End of the type section, if any (a new import section goes right after it). */
  typeSectionEnd?: number
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

class Reader {
  pos: number
  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
    readonly end = bytes.length
  ) {
    this.pos = pos
  }
  byte(): number {
    if (this.pos >= this.end) throw new InvalidModuleError('the module ends in the middle of a section')
    return this.bytes[this.pos++]!
  }
  u32(): number {
    let result = 0
    let shift = 0
    for (let i = 0; i < 5; i++) {
      const b = this.byte()
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return result
      shift += 7
    }
    throw new InvalidModuleError('the module has a malformed integer')
  }
  u64(): number {
    let result = 0
    let shift = 0
    for (let i = 0; i < 10; i++) {
      const b = this.byte()
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return result
      shift += 7
    }
    throw new InvalidModuleError('the module has a malformed integer')
  }
  name(): string {
    const len = this.u32()
    if (this.pos + len > this.end) throw new InvalidModuleError('the module has a name running past its section')
    const start = this.pos
    this.pos += len
    try {
      return utf8.decode(this.bytes.subarray(start, this.pos))
    } catch (err) {
      throw new InvalidModuleError('the module has a name that is not UTF-8', { cause: err })
    }
  }
  limits(): MemoryLimits {
    const flags = this.byte()
    const memory64 = (flags & 0x04) !== 0
    const read = (): number => (memory64 ? this.u64() : this.u32())
    const min = read()
    const max = (flags & 0x01) !== 0 ? read() : undefined
    return { min, max, shared: (flags & 0x02) !== 0, memory64 }
  }
  valtype(): void {
    const t = this.byte()
    // (ref null? ht): a heap type follows as a signed LEB.
    if (t === 0x63 || t === 0x64) this.u64()
  }
}

/** Parse the sections this runtime cares about. Throws `InvalidModuleError` for malformed bytes. */
export function parseModule(bytes: Uint8Array): ModuleInfo {
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new InvalidModuleError('the file is not a WebAssembly module (it does not start with "\\0asm")')
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new InvalidModuleError('the module is not WebAssembly binary version 1 (components are not supported)')
  }
  const info: ModuleInfo = { imports: [], exports: [], memories: [] }
  const r = new Reader(bytes, 8)
  while (r.pos < bytes.length) {
    const start = r.pos
    const id = r.byte()
    const size = r.u32()
    const payloadStart = r.pos
    const end = payloadStart + size
    if (end > bytes.length) throw new InvalidModuleError(`section ${id} runs past the end of the module`)
    const s = new Reader(bytes, payloadStart, end)
    if (id === 1) info.typeSectionEnd = end
    if (id === SECTION_IMPORT) {
      const count = s.u32()
      info.importSection = { start, end, entries: s.pos }
      for (let n = count; n > 0; n--) {
        const module = s.name()
        const name = s.name()
        const kind = s.byte()
        if (kind === EXTERN_KIND.function) s.u32()
        else if (kind === EXTERN_KIND.table) {
          s.valtype()
          s.limits()
        } else if (kind === EXTERN_KIND.memory) info.memories.push(s.limits())
        else if (kind === EXTERN_KIND.global) {
          s.valtype()
          s.byte()
        } else if (kind === EXTERN_KIND.tag) {
          s.byte()
          s.u32()
        } else throw new InvalidModuleError(`the module has an import of unknown kind ${kind}`)
        info.imports.push({ module, name, kind: KIND_NAMES[kind] ?? 'unknown' })
      }
    } else if (id === SECTION_MEMORY) {
      for (let n = s.u32(); n > 0; n--) info.memories.push(s.limits())
      info.memorySection = { start, end }
    } else if (id === SECTION_EXPORT) {
      for (let n = s.u32(); n > 0; n--) {
        const name = s.name()
        const kind = s.byte()
        s.u32()
        info.exports.push({ name, kind: KIND_NAMES[kind] ?? 'unknown' })
      }
    }
    r.pos = end
  }
  return info
}

const REQUIRED_EXPORTS: Record<WasmAbi, ReadonlyArray<{ name: string; kind: string }>> = {
  'wasi-preview1': [
    { name: '_start', kind: 'function' },
    { name: 'memory', kind: 'memory' }
  ],
  'json-v1': [
    { name: 'memory', kind: 'memory' },
    { name: 'alloc', kind: 'function' },
    { name: 'run', kind: 'function' }
  ]
}

/**
 * Check a parsed module against its ABI: imports only from the allowed module
 * (functions only), the exports the ABI needs, one 32-bit unshared memory of its own.
 */
export function checkAbi(info: ModuleInfo, abi: WasmAbi): void {
  for (const imp of info.imports) {
    const qualified = `${imp.module}.${imp.name}`
    if (imp.module === TOOL_IMPORT_MODULE) {
      // The tool ABI (tool-bridge.ts), in both ABIs: what a call may reach is decided per call by the grants.
      if (!(TOOL_IMPORT_NAMES as readonly string[]).includes(imp.name)) {
        throw new ForbiddenImportError(`module imports "${qualified}"; the "${TOOL_IMPORT_MODULE}" functions are ${TOOL_IMPORT_NAMES.join(', ')}`)
      }
    } else if (abi === 'wasi-preview1') {
      if (imp.module !== WASI_IMPORT_MODULE) {
        throw new ForbiddenImportError(`module imports "${qualified}", which the wasi-preview1 ABI does not allow (only "${WASI_IMPORT_MODULE}" functions)`)
      }
    } else if (imp.module !== JSON_V1_IMPORT_MODULE || !(JSON_V1_ALLOWED_IMPORTS as readonly string[]).includes(imp.name)) {
      throw new ForbiddenImportError(
        `module imports "${qualified}", which the json-v1 ABI does not allow (only ${JSON_V1_ALLOWED_IMPORTS.map((n) => `"env.${n}"`).join(', ')})`
      )
    }
    if (imp.kind !== 'function') {
      throw new ForbiddenImportError(`module imports "${qualified}" as a ${imp.kind}; agents may import functions only and must declare their own memory`)
    }
  }
  for (const need of REQUIRED_EXPORTS[abi]) {
    const found = info.exports.find((e) => e.name === need.name)
    if (found == null) throw new InvalidModuleError(`module does not export "${need.name}", which the ${abi} ABI requires`)
    if (found.kind !== need.kind) throw new InvalidModuleError(`module exports "${need.name}" as a ${found.kind}; the ${abi} ABI needs a ${need.kind}`)
  }
  if (info.memories.length !== 1) throw new InvalidModuleError(`module declares ${info.memories.length} memories; agents need exactly one`)
  const mem = info.memories[0]!
  if (mem.memory64) throw new InvalidModuleError('module uses a 64-bit memory, which agents may not')
  if (mem.shared) throw new InvalidModuleError('module uses a shared memory, which agents may not')
}

function leb(value: number): number[] {
  const out: number[] = []
  do {
    let b = value & 0x7f
    value = Math.floor(value / 128)
    if (value !== 0) b |= 0x80
    out.push(b)
  } while (value !== 0)
  return out
}

/**
 * Return the module with its memory maximum set to at most `capPages`.
 * Rejects a module whose initial memory is already above the cap.
 */
export function capMemory(bytes: Uint8Array, info: ModuleInfo, capPages: number): Uint8Array {
  const section = info.memorySection
  if (section == null) return bytes
  const payload: number[] = [...leb(info.memories.length)]
  for (const mem of info.memories) {
    if (mem.min > capPages) {
      throw new AgentMemoryLimitError(`module asks for ${mibOf(mem.min)} MiB of initial memory; the cap is ${mibOf(capPages)} MiB`)
    }
    const max = Math.min(mem.max ?? capPages, capPages)
    payload.push(0x01 | (mem.shared ? 0x02 : 0), ...leb(mem.min), ...leb(max))
  }
  const header = [SECTION_MEMORY, ...leb(payload.length)]
  const out = new Uint8Array(bytes.length - (section.end - section.start) + header.length + payload.length)
  out.set(bytes.subarray(0, section.start), 0)
  out.set(header, section.start)
  out.set(payload, section.start + header.length)
  out.set(bytes.subarray(section.end), section.start + header.length + payload.length)
  return out
}

/** Pages in a cap given in MiB. */
export function pagesOf(mib: number): number {
  return Math.floor((mib * 1024 * 1024) / WASM_PAGE_BYTES)
}

function mibOf(pages: number): string {
  return String(Math.round(((pages * WASM_PAGE_BYTES) / (1024 * 1024)) * 100) / 100)
}

/** Module and field name under which a rewritten module imports its memory. */
export const HOST_MEMORY_IMPORT = { module: 'zerostate', name: 'memory' } as const

/**
 * Turn the module's own (single) memory into an import of a host memory with
 * the same minimum and `capPages` as maximum, so the host can give it a memory
 * it reuses across calls (zeroed in between) instead of reserving a new one per
 * call. Memory index 0 is unchanged: the defined memory is removed and the
 * imported one takes its place. Call after `checkAbi` and `capMemory`'s check.
 */
export function importMemory(bytes: Uint8Array, info: ModuleInfo, capPages: number): { bytes: Uint8Array; min: number; max: number } {
  const mem = info.memories[0]
  const section = info.memorySection
  if (mem == null || section == null || info.memories.length !== 1) throw new InvalidModuleError('the module must declare exactly one memory of its own')
  if (mem.min > capPages) throw new AgentMemoryLimitError(`module asks for ${mibOf(mem.min)} MiB of initial memory; the cap is ${mibOf(capPages)} MiB`)
  const max = Math.min(mem.max ?? capPages, capPages)
  const enc = new TextEncoder()
  const name = (s: string): number[] => {
    const b = [...enc.encode(s)]
    return [...leb(b.length), ...b]
  }
  const entry = [...name(HOST_MEMORY_IMPORT.module), ...name(HOST_MEMORY_IMPORT.name), EXTERN_KIND.memory, 0x01, ...leb(mem.min), ...leb(max)]
  const imp = info.importSection
  let payload: number[]
  let cutStart: number
  let cutEnd: number
  if (imp) {
    const count = info.imports.length + 1
    payload = [...leb(count), ...bytes.subarray(imp.entries, imp.end), ...entry]
    cutStart = imp.start
    cutEnd = imp.end
  } else {
    payload = [...leb(1), ...entry]
    cutStart = cutEnd = info.typeSectionEnd ?? 8
  }
  const newImport = [SECTION_IMPORT, ...leb(payload.length), ...payload]
  // The import section always comes before the memory section.
  const out = new Uint8Array(bytes.length - (cutEnd - cutStart) + newImport.length - (section.end - section.start))
  let at = 0
  const put = (chunk: ArrayLike<number>): void => {
    out.set(chunk, at)
    at += chunk.length
  }
  put(bytes.subarray(0, cutStart))
  put(newImport)
  put(bytes.subarray(cutEnd, section.start))
  put(bytes.subarray(section.end))
  return { bytes: out, min: mem.min, max }
}
