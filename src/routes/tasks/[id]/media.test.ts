import { describe, expect, it } from 'vitest'
import { byteSize, downloadName, sniffMedia } from './media'

const bytes = (...parts: Array<string | number[]>) => new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)))

describe('sniffMedia', () => {
  it('names images, audio, video and documents by their magic numbers', () => {
    expect(sniffMedia(bytes([0x89], 'PNG\r\n\x1a\n', [0, 0, 0, 13]))).toEqual({ mediaType: 'image/png', kind: 'image', extension: '.png' })
    expect(sniffMedia(bytes([0xff, 0xd8, 0xff, 0xe0]))).toMatchObject({ mediaType: 'image/jpeg', kind: 'image' })
    expect(sniffMedia(bytes('GIF89a', [1, 0, 1, 0]))).toMatchObject({ mediaType: 'image/gif', kind: 'image' })
    expect(sniffMedia(bytes('RIFF', [36, 0, 0, 0], 'WAVEfmt '))).toMatchObject({ mediaType: 'audio/wav', kind: 'audio', extension: '.wav' })
    expect(sniffMedia(bytes('RIFF', [36, 0, 0, 0], 'WEBPVP8 '))).toMatchObject({ mediaType: 'image/webp', kind: 'image' })
    expect(sniffMedia(bytes('OggS', [0]))).toMatchObject({ mediaType: 'audio/ogg', kind: 'audio' })
    expect(sniffMedia(bytes([0, 0, 0, 24], 'ftypisom'))).toMatchObject({ mediaType: 'video/mp4', kind: 'video' })
    expect(sniffMedia(bytes('%PDF-1.7\n'))).toMatchObject({ mediaType: 'application/pdf', kind: 'file', extension: '.pdf' })
  })
  it('anything else is a file to download, and a cut-off signature is not a match', () => {
    expect(sniffMedia(bytes([1, 2, 3, 0xff]))).toEqual({ mediaType: 'application/octet-stream', kind: 'file', extension: '.bin' })
    expect(sniffMedia(bytes([0x89], 'PN'))).toMatchObject({ kind: 'file' })
    expect(sniffMedia(new Uint8Array())).toMatchObject({ kind: 'file' })
  })
})

describe('byteSize and downloadName', () => {
  it('reads as people write sizes, and names the file after the step', () => {
    expect(byteSize(512)).toBe('512 B')
    expect(byteSize(12_595)).toBe('12.3 KiB')
    expect(byteSize(3 * 1048576)).toBe('3.0 MiB')
    expect(downloadName('Output of Make a thumbnail!', sniffMedia(bytes([0xff, 0xd8, 0xff])))).toBe('output-of-make-a-thumbnail.jpg')
    expect(downloadName('???', sniffMedia(new Uint8Array()))).toBe('output.bin')
  })
})
