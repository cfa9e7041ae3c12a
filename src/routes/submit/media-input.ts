/**
 * A file as a task input: its bytes as they are, or (for the media agents) after one options line,
 * a JSON object and a newline (agents/lib/c/agent.h), e.g. `{"maxSide":128}\n<JPEG bytes>`.
 */

/** Files past this size are refused before reading: the runtime's output cap (DEFAULT_OUTPUT_BYTES); a file up to it crosses the mesh in chunks. */
export const MAX_INPUT_FILE = 10 * 1024 * 1024

/** What the options box holds: nothing, a JSON object, or a sentence saying what is wrong. */
export type OptionsCheck = { ok: true; options?: Record<string, unknown> } | { ok: false; error: string }

/** Check the options typed for a file: empty, or exactly one JSON object. */
export function checkOptions(text: string): OptionsCheck {
  if (text.trim() === '') return { ok: true }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, error: 'The options for the file must be one JSON object, e.g. {"maxSide": 128}; this is not JSON.' }
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, error: 'The options for the file must be one JSON object, e.g. {"maxSide": 128}.' }
  }
  return { ok: true, options: value as Record<string, unknown> }
}

/** The input bytes: `bytes` alone, or the options line then `bytes`. */
export function fileInput(bytes: Uint8Array, options?: Record<string, unknown>): Uint8Array {
  if (options == null) return bytes
  const line = new TextEncoder().encode(`${JSON.stringify(options)}\n`)
  const out = new Uint8Array(line.byteLength + bytes.byteLength)
  out.set(line)
  out.set(bytes, line.byteLength)
  return out
}

/** How a file is previewed: an image is shown, audio plays, anything else is named. */
export function previewKind(type: string): 'image' | 'audio' | 'video' | 'file' {
  if (type.startsWith('image/')) return 'image'
  if (type.startsWith('audio/')) return 'audio'
  if (type.startsWith('video/')) return 'video'
  return 'file'
}

/** The first file of a drop or a paste (a pasted screenshot is a file), if any. */
export function firstFile(data: DataTransfer | null | undefined): File | undefined {
  if (data == null) return undefined
  if (data.files.length > 0) return data.files[0]
  for (const item of Array.from(data.items ?? [])) {
    if (item.kind === 'file') {
      const f = item.getAsFile()
      if (f != null) return f
    }
  }
  return undefined
}
