/**
 * The media type of bytes an agent returned, from their magic numbers (an agent's output carries no
 * header; the bytes name their format, as browsers sniff them: WHATWG MIME Sniffing §7), and how
 * the task page offers them: an image is shown, audio and video play, anything else downloads.
 */

/** What the bytes are and how to show them. */
export interface MediaInfo {
  mediaType: string
  kind: 'image' | 'audio' | 'video' | 'file'
  /** A file name extension for the download, with its dot. */
  extension: string
}

const ascii = (b: Uint8Array, at: number, s: string): boolean => {
  if (b.byteLength < at + s.length) return false
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false
  return true
}

const SIGNATURES: Array<[test: (b: Uint8Array) => boolean, info: MediaInfo]> = [
  [(b) => b[0] === 0x89 && ascii(b, 1, 'PNG\r\n\x1a\n'), { mediaType: 'image/png', kind: 'image', extension: '.png' }],
  [(b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff, { mediaType: 'image/jpeg', kind: 'image', extension: '.jpg' }],
  [(b) => ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a'), { mediaType: 'image/gif', kind: 'image', extension: '.gif' }],
  [(b) => ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBPVP'), { mediaType: 'image/webp', kind: 'image', extension: '.webp' }],
  [(b) => ascii(b, 0, 'BM') && b.byteLength > 26, { mediaType: 'image/bmp', kind: 'image', extension: '.bmp' }],
  [(b) => ascii(b, 0, 'RIFF') && ascii(b, 8, 'WAVE'), { mediaType: 'audio/wav', kind: 'audio', extension: '.wav' }],
  [(b) => ascii(b, 0, 'OggS'), { mediaType: 'audio/ogg', kind: 'audio', extension: '.ogg' }],
  [(b) => ascii(b, 0, 'fLaC'), { mediaType: 'audio/flac', kind: 'audio', extension: '.flac' }],
  [(b) => ascii(b, 0, 'ID3') || (b[0] === 0xff && ((b[1] ?? 0) & 0xe0) === 0xe0), { mediaType: 'audio/mpeg', kind: 'audio', extension: '.mp3' }],
  [(b) => ascii(b, 4, 'ftyp'), { mediaType: 'video/mp4', kind: 'video', extension: '.mp4' }],
  [(b) => b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3, { mediaType: 'video/webm', kind: 'video', extension: '.webm' }],
  [(b) => ascii(b, 0, '%PDF-'), { mediaType: 'application/pdf', kind: 'file', extension: '.pdf' }],
  [(b) => ascii(b, 0, 'PK\x03\x04'), { mediaType: 'application/zip', kind: 'file', extension: '.zip' }]
]

/** The media type of `bytes` from their first bytes; unknown bytes are application/octet-stream. */
export function sniffMedia(bytes: Uint8Array): MediaInfo {
  for (const [test, info] of SIGNATURES) if (test(bytes)) return info
  return { mediaType: 'application/octet-stream', kind: 'file', extension: '.bin' }
}

/** "12.3 KiB": a byte count for people. */
export function byteSize(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1048576).toFixed(1)} MiB`
}

/** A download name for a step's output: the step's words, kebab-cased, and the format's extension. */
export function downloadName(label: string, info: MediaInfo): string {
  const base =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 48) || 'output'
  return `${base}${info.extension}`
}
