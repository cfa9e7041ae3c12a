// The bundled media agents (C, built by agents/build.mjs with clang --target=wasm32-wasi and stb),
// run through the real runtime (worker pool, the manifests' memory and time limits) with media made
// in the test (test/fixtures/media.mjs): sizes, pixels, metadata really gone, and bad input refused
// with a sentence (AgentExitError), never a trap.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { staticFetch } from './static-fetch.ts'
import {
  AgentExitError,
  MemoryAgentStore,
  bundledAgents,
  createAgentRuntime,
  loadBundledAgent,
  type AgentPackage,
  type AgentRuntime
} from '../src/lib/runtime/index.ts'
import { deflateSync } from 'node:zlib'
import {
  containsText,
  decodePng,
  decodeWav,
  encodePdf,
  encodePng,
  encodeWav,
  imageSize,
  jpegMarkers,
  pngChunks,
  withExif,
  withOptions
} from '../test/fixtures/media.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

const MEDIA = ['image-resize', 'audio-edit', 'pdf-text']
let rt: AgentRuntime
const pkgs = new Map<string, AgentPackage>()
const run = async (name: string, input: unknown) => (await rt.run(pkgs.get(name)!, input)).output
/** The agent's output, which must be bytes. */
const runBytes = async (name: string, input: unknown): Promise<Uint8Array> => {
  const out = await run(name, input)
  expect(out).toBeInstanceOf(Uint8Array)
  return out as Uint8Array
}
const failure = async (name: string, input: unknown): Promise<AgentExitError> => {
  const err = await run(name, input).then(
    () => undefined,
    (e: unknown) => e
  )
  expect(err).toBeInstanceOf(AgentExitError)
  return err as AgentExitError
}

beforeAll(async () => {
  if (!existsSync(`${root}static/agents/index.json`) || MEDIA.some((n) => !existsSync(`${root}static/agents/${n}.wasm`))) {
    execFileSync('node', ['agents/build.mjs'], { cwd: root, stdio: 'ignore' })
  }
  const store = new MemoryAgentStore()
  for (const agent of await bundledAgents({ baseUrl: 'http://app.test/agents/', fetch: staticFetch })) {
    if (MEDIA.includes(agent.manifest.name)) pkgs.set(agent.manifest.name, await loadBundledAgent(agent, store, staticFetch))
  }
  rt = createAgentRuntime({ workers: 2 })
  await rt.start()
}, 180_000)
afterAll(() => rt?.stop())

/** Left half red, right half blue. */
const halves = (w: number, h: number, chunks: Array<[string, Uint8Array]> = []) =>
  encodePng(w, h, (x) => (x < w / 2 ? [255, 0, 0, 255] : [0, 0, 255, 255]), chunks)
const near = (px: number[], rgb: number[]) => rgb.every((c, i) => Math.abs(px[i]! - c) < 40)

describe('image-resize', () => {
  test('is a signed wasi-preview1 agent with input and output schemas', () => {
    const m = pkgs.get('image-resize')!.manifest
    expect(m.abi).toBe('wasi-preview1')
    expect(m.capabilities).toEqual(expect.arrayContaining(['image-resize', 'image-thumbnail', 'exif-stripping']))
    expect(m.input).toBeTypeOf('object')
    expect(m.output).toBeTypeOf('object')
  })

  test('a PNG becomes a 256 px thumbnail by default, pixels in place, its text chunks gone', async () => {
    const png = halves(400, 200, [['tEXt', new TextEncoder().encode('Comment\0taken at 48.8584N 2.2945E')]])
    expect(pngChunks(png)).toContain('tEXt')
    const out = await runBytes('image-resize', png)
    expect(imageSize(out)).toEqual({ format: 'png', width: 256, height: 128 })
    expect(pngChunks(out)).not.toContain('tEXt')
    expect(containsText(out, '48.8584N')).toBe(false)
    const img = decodePng(out)
    expect(near(img.rgba(10, 64), [255, 0, 0])).toBe(true)
    expect(near(img.rgba(245, 64), [0, 0, 255])).toBe(true)
  })

  test('options: width alone keeps the aspect ratio and may enlarge; format jpeg; a small image is not enlarged by default', async () => {
    const out = await runBytes('image-resize', withOptions({ width: 100, format: 'jpeg', quality: 80 }, halves(400, 200)))
    expect(imageSize(out)).toEqual({ format: 'jpeg', width: 100, height: 50 })
    const big = await runBytes('image-resize', withOptions({ height: 60 }, halves(40, 30)))
    expect(imageSize(big)).toEqual({ format: 'png', width: 80, height: 60 })
    expect(imageSize(await runBytes('image-resize', halves(50, 30)))).toEqual({ format: 'png', width: 50, height: 30 })
  })

  test('a JPEG loses its EXIF (camera, GPS) and is turned upright by its orientation first', async () => {
    const jpeg = await runBytes('image-resize', withOptions({ format: 'jpeg', maxSide: 400 }, halves(400, 200)))
    const tagged = withExif(jpeg, { orientation: 6 })
    expect(jpegMarkers(tagged)).toContain(0xe1)
    expect(containsText(tagged, 'ZeroStateCam')).toBe(true)
    const out = await runBytes('image-resize', withOptions({ maxSide: 100 }, tagged))
    expect(imageSize(out)).toEqual({ format: 'jpeg', width: 50, height: 100 })
    expect(jpegMarkers(out)).not.toContain(0xe1)
    expect(containsText(out, 'ZeroStateCam')).toBe(false)
    expect(containsText(out, 'Exif')).toBe(false)
    // Orientation 6 is "rotate 90° clockwise": the left (red) half ends on top.
    const png = decodePng(await runBytes('image-resize', withOptions({ maxSide: 100, format: 'png' }, tagged)))
    expect([png.width, png.height]).toEqual([50, 100])
    expect(near(png.rgba(25, 10), [255, 0, 0])).toBe(true)
    expect(near(png.rgba(25, 90), [0, 0, 255])).toBe(true)
  })

  test('bad input is refused with a sentence: truncated JPEG, a huge declared size, not an image, bad options', async () => {
    const jpeg = await runBytes('image-resize', withOptions({ format: 'jpeg', maxSide: 400 }, halves(400, 200)))
    expect((await failure('image-resize', jpeg.subarray(0, Math.floor(jpeg.byteLength / 2)))).message).toMatch(/JPEG is truncated/)
    // A PNG header that declares 60000×60000 pixels over a few bytes of data: refused before decoding.
    const huge = halves(4, 4)
    new DataView(huge.buffer).setUint32(16, 60000)
    new DataView(huge.buffer).setUint32(20, 60000)
    expect((await failure('image-resize', huge)).message).toMatch(/declares 60000×60000 pixels \(3600 MP\); the limit is 24 MP/)
    expect((await failure('image-resize', new TextEncoder().encode('hello, not an image'))).message).toMatch(/not an image this agent reads/)
    expect((await failure('image-resize', new Uint8Array())).message).toMatch(/no image/)
    expect((await failure('image-resize', withOptions({ format: 'webp' }, halves(4, 4)))).message).toMatch(/unknown format "webp"/)
    expect((await failure('image-resize', withOptions({ width: 100000 }, halves(4, 4)))).message).toMatch(/between 1 and 8192/)
    // The worker survived every refusal: the next call runs.
    expect(imageSize(await runBytes('image-resize', halves(8, 8)))).toMatchObject({ width: 8, height: 8 })
  })
})

/** `seconds` of a sine at `hz` (amplitude 0.5), interleaved over `channels`. */
const tone = (hz: number, rate: number, seconds: number, channels = 1) => {
  const frames = Math.round(rate * seconds)
  const samples = new Int16Array(frames * channels)
  for (let i = 0; i < frames; i++) for (let c = 0; c < channels; c++) samples[i * channels + c] = Math.round(16383 * Math.sin((2 * Math.PI * hz * i) / rate))
  return encodeWav({ rate, channels, samples })
}
const crossings = (s: Int16Array) => s.reduce((n, v, i) => n + (i > 0 && s[i - 1]! < 0 !== v < 0 ? 1 : 0), 0)
const rms = (s: Int16Array) => Math.sqrt(s.reduce((a, v) => a + v * v, 0) / Math.max(1, s.length)) / 32768

describe('audio-edit', () => {
  test('trims, resamples 48 kHz stereo to 16 kHz mono, and the pitch stays', async () => {
    const out = decodeWav(await runBytes('audio-edit', withOptions({ start: 0.25, end: 0.75, rate: 16000, channels: 1 }, tone(440, 48000, 1, 2))))
    expect(out).toMatchObject({ format: 1, channels: 1, rate: 16000, bits: 16 })
    expect(out.samples.length).toBe(8000)
    // 440 Hz for 0.5 s: 220 periods, two zero crossings each.
    expect(Math.abs(crossings(out.samples) - 440)).toBeLessThanOrEqual(4)
    expect(rms(out.samples)).toBeGreaterThan(0.3)
  })

  test('a trim alone copies the samples exactly', async () => {
    const input = tone(1000, 8000, 1)
    const out = decodeWav(await runBytes('audio-edit', withOptions({ start: 0.5 }, input)))
    expect(out.rate).toBe(8000)
    expect([...out.samples]).toEqual([...decodeWav(input).samples.subarray(4000)])
  })

  test('resampling down filters out what the new rate cannot hold (no aliasing)', async () => {
    // 7 kHz is above the 4 kHz Nyquist limit of 8 kHz audio: it must fade, not fold down to 1 kHz.
    const out = decodeWav(await runBytes('audio-edit', withOptions({ rate: 8000 }, tone(7000, 48000, 0.5))))
    expect(out.samples.length).toBe(4000)
    expect(rms(out.samples.subarray(100, 3900))).toBeLessThan(0.02)
  })

  test('a silent WAV still comes back as bytes, not text', async () => {
    const out = await runBytes('audio-edit', encodeWav({ rate: 11025, channels: 1, samples: new Int16Array(2000) }))
    expect(decodeWav(out).samples.every((v) => v === 0)).toBe(true)
  })

  test('bad input is refused with a sentence: not a WAV, cut short, start past the end, a result over the output cap', async () => {
    expect((await failure('audio-edit', new TextEncoder().encode('RIFX nope'))).message).toMatch(/not a WAV file/)
    expect((await failure('audio-edit', tone(440, 8000, 1).subarray(0, 30))).message).toMatch(/format chunk is cut short/)
    expect((await failure('audio-edit', withOptions({ start: 5 }, tone(440, 8000, 1)))).message).toMatch(
      /start \(5.000 s\) is past the end of the audio \(1.000 s\)/
    )
    expect((await failure('audio-edit', withOptions({ rate: 192000, channels: 2 }, tone(440, 8000, 20)))).message).toMatch(
      /the result would be 14.6 MiB; the output limit is 10 MiB/
    )
    expect((await failure('audio-edit', withOptions({ rate: 100 }, tone(440, 8000, 1)))).message).toMatch(/rate must be/)
    // A streamed WAV whose data chunk declares more than it holds: what is there is read.
    const streamed = tone(440, 8000, 0.5)
    new DataView(streamed.buffer).setUint32(40, 0xffffffff, true)
    expect(decodeWav(await runBytes('audio-edit', streamed)).samples.length).toBe(4000)
  })
})

/** A one-object PDF around a raw stream body (for bodies encodePdf would not write). */
const rawStreamPdf = (body: Uint8Array, dict: string) => {
  const enc = new TextEncoder()
  const head = enc.encode(`%PDF-1.4\n1 0 obj\n<< /Length ${body.byteLength} ${dict} >>\nstream\n`)
  const tail = enc.encode('\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n')
  const out = new Uint8Array(head.byteLength + body.byteLength + tail.byteLength)
  out.set(head)
  out.set(body, head.byteLength)
  out.set(tail, head.byteLength + body.byteLength)
  return out
}

describe('pdf-text', () => {
  test('reads the lines of each page of a compressed PDF, escapes and Latin-1 included', async () => {
    const pdf = encodePdf(['Hello (world) from page one\nA second line', 'Page two: caf\u00e9 \\ backslash'])
    const out = (await run('pdf-text', pdf)) as { text: string; pages: number; streams: number; characters: number }
    expect(out.text).toBe('Hello (world) from page one\nA second line\nPage two: caf\u00e9 \\ backslash')
    expect(out.pages).toBe(2)
    expect(out.streams).toBe(2)
    expect(out.characters).toBe(out.text.length)
  })

  test('uncompressed streams, TJ arrays with spacing, hex and UTF-16 strings', async () => {
    const content = new TextEncoder().encode(
      'BT /F1 12 Tf 72 700 Td [(Zero)-300(State)] TJ 0 -14 Td <48692e> Tj 0 -14 Td <FEFF004D00E9007300680020D83DDE00> Tj ET'
    )
    const out = (await run('pdf-text', rawStreamPdf(content, ''))) as { text: string }
    expect(out.text).toBe('Zero State\nHi.\nM\u00e9sh \u{1F600}')
  })

  test('a compression bomb, a corrupt stream, a truncated file and not a PDF are refused with a sentence', async () => {
    const bomb = deflateSync(new Uint8Array(64 * 1024 * 1024))
    expect(bomb.byteLength).toBeLessThan(128 * 1024)
    expect((await failure('pdf-text', rawStreamPdf(bomb, '/Filter /FlateDecode'))).message).toMatch(/inflates past 8 MiB \(a compression bomb\?\): refused/)
    const corrupt = deflateSync(new TextEncoder().encode('BT (hello) Tj ET')).subarray(0, 8)
    expect((await failure('pdf-text', rawStreamPdf(corrupt, '/Filter /FlateDecode'))).message).toMatch(/corrupt or cut short/)
    const pdf = encodePdf(['text'])
    const cut = Buffer.from(pdf).indexOf('endstream') - 4
    expect((await failure('pdf-text', pdf.subarray(0, cut))).message).toMatch(/truncated: a stream has no endstream/)
    expect((await failure('pdf-text', new TextEncoder().encode('<html>not a pdf</html>'))).message).toMatch(/not a PDF/)
    expect(((await run('pdf-text', encodePdf(['still running']))) as { text: string }).text).toBe('still running')
  })
})
