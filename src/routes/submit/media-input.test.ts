import { describe, expect, it } from 'vitest'
import { checkOptions, fileInput, previewKind } from './media-input'

describe('the options line of a file input', () => {
  it('accepts nothing or one JSON object, and says what is wrong otherwise', () => {
    expect(checkOptions('  ')).toEqual({ ok: true })
    expect(checkOptions('{"maxSide": 128, "format": "jpeg"}')).toEqual({ ok: true, options: { maxSide: 128, format: 'jpeg' } })
    expect(checkOptions('[1]')).toMatchObject({ ok: false, error: expect.stringContaining('one JSON object') })
    expect(checkOptions('maxSide=128')).toMatchObject({ ok: false, error: expect.stringContaining('not JSON') })
  })
  it('puts the options on one line before the bytes, or sends the bytes as they are', () => {
    const jpeg = Uint8Array.of(0xff, 0xd8, 0xff, 0x0a, 0x7b)
    expect(fileInput(jpeg)).toBe(jpeg)
    const out = fileInput(jpeg, { maxSide: 128, note: 'a\nb' })
    const nl = out.indexOf(0x0a)
    expect(JSON.parse(new TextDecoder().decode(out.subarray(0, nl)))).toEqual({ maxSide: 128, note: 'a\nb' })
    expect([...out.subarray(nl + 1)]).toEqual([...jpeg])
  })
  it('previews images, audio and video by their media type', () => {
    expect(previewKind('image/jpeg')).toBe('image')
    expect(previewKind('audio/wav')).toBe('audio')
    expect(previewKind('video/mp4')).toBe('video')
    expect(previewKind('application/pdf')).toBe('file')
    expect(previewKind('')).toBe('file')
  })
})
