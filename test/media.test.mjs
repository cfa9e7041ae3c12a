// Images, audio and files across the mesh (issue 14, vision §7), in real Chromium tabs with the real
// relay: tab A (a phone-sized screen) takes a file from the Submit page (file input, drop, paste),
// previews it and submits it; donor tab B runs the bundled media agent (C compiled to WASI); A's task
// page shows the image the donor computed (decoded, at the thumbnail's size), plays the audio and
// offers the bytes for download. axe-core finds nothing on either page, and neither scrolls sideways.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { after, before, describe, it } from 'node:test'
import { encodePng, encodeWav } from './fixtures/media.mjs'
import { startMesh, waitForFullMesh } from './harness.mjs'

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const PHONE = { width: 390, height: 844 }
const LIMIT = 180_000

/** axe-core violations on the page as sentences (evaluated over CDP: the page's CSP refuses injected scripts). */
async function axe(page) {
  await page.evaluate(AXE_SOURCE)
  return await page.evaluate(async () => {
    const r = await window.axe.run(document, { rules: { 'label-content-name-mismatch': { enabled: true } } })
    return r.violations.map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`)
  })
}
/** Elements wider than the phone's screen (none may be). */
const sideways = (page) =>
  page.evaluate((vw) => {
    if (document.documentElement.scrollWidth <= vw) return []
    return [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > vw + 0.5).map((el) => el.tagName.toLowerCase())
  }, PHONE.width)

describe('media across the mesh', () => {
  let mesh, a, b, ids, thumbnailTask
  before(async () => {
    mesh = await startMesh()
    const phone = await mesh.browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true })
    a = await mesh.newPeer({ context: phone, path: '/submit' })
    b = await mesh.newPeer()
    ids = await waitForFullMesh([a, b])
    await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await a.waitForFunction((idB) => window.zerostate.peers().some((p) => p.id === idB && p.donating && p.freeWorkers > 0), ids[1], { timeout: 30_000 })
  })
  after(async () => {
    await mesh?.stop()
  })

  it('an image from the Submit page of A becomes a thumbnail on donor B, shown decoded on A at its size', { timeout: LIMIT }, async () => {
    // 300×200, left half red and right half blue, with a text chunk that must not survive.
    const png = encodePng(300, 200, (x) => (x < 150 ? [220, 20, 20, 255] : [20, 20, 220, 255]), [['tEXt', new TextEncoder().encode('Comment\0secret place')]])
    const ranOnA = await a.evaluate(() => window.zerostate.runtime.stats().completed)
    const ranOnB = await b.evaluate(() => window.zerostate.runtime.stats().completed)

    await a.fill('[data-testid="submit-description"]', 'make a thumbnail of this image')
    await a.selectOption('[data-testid="submit-agent"]', { label: 'image-resize 1.0.0 (bundled)' })
    await a.setInputFiles('[data-testid="submit-file"]', { name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from(png) })
    const preview = await a.waitForSelector('[data-testid="submit-preview-image"]')
    assert.deepEqual(
      await preview.evaluate(async (img) => {
        await img.decode()
        return [img.naturalWidth, img.naturalHeight, img.alt]
      }),
      [300, 200, 'Preview of photo.png']
    )
    assert.match(await a.textContent('[data-testid="submit-file-note"]'), /photo\.png \(image\/png, \d+\.\d KiB\)/)
    await a.fill('[data-testid="submit-input"]', '{"maxSide": 96}')
    assert.deepEqual(await axe(a), [], 'the Submit page with a file loaded')
    assert.deepEqual(await sideways(a), [], 'the Submit page at 390 px')
    // The camera: an image picker that asks for the camera on a phone.
    assert.deepEqual(await a.$eval('[data-testid="submit-camera"]', (el) => [el.accept, el.getAttribute('capture')]), ['image/*', 'environment'])

    await a.click('[data-testid="submit-button"]')
    await a.waitForURL(/\/tasks\//)
    const img = await a.waitForSelector('[data-testid="output-image"]', { timeout: 60_000 })
    const shown = await img.evaluate(async (el) => {
      await el.decode()
      const c = document.createElement('canvas')
      c.width = el.naturalWidth
      c.height = el.naturalHeight
      const g = c.getContext('2d')
      g.drawImage(el, 0, 0)
      return { w: el.naturalWidth, h: el.naturalHeight, left: [...g.getImageData(5, 30, 1, 1).data], right: [...g.getImageData(90, 30, 1, 1).data] }
    })
    assert.deepEqual([shown.w, shown.h], [96, 64], 'the thumbnail fits 96 px and keeps 3:2')
    assert.ok(shown.left[0] > 180 && shown.left[2] < 60, `left is red: ${shown.left}`)
    assert.ok(shown.right[2] > 180 && shown.right[0] < 60, `right is blue: ${shown.right}`)
    assert.equal(await a.getAttribute('[data-testid="output-media"]', 'data-media-type'), 'image/png')
    assert.match(await a.getAttribute('[data-testid="output-download"]', 'download'), /\.png$/)

    // It ran on B, not on A, and what came back carries no text chunk.
    const id = a.url().split('/tasks/')[1]
    const result = await a.evaluate(async (taskId) => {
      const r = await window.zerostate.task(taskId).done
      const out = r.steps[0].output
      return {
        peer: r.steps[0].peer,
        bytes: out instanceof Uint8Array,
        text: out instanceof Uint8Array && new TextDecoder('latin1').decode(out).includes('secret place')
      }
    }, decodeURIComponent(id))
    assert.deepEqual(result, { peer: ids[1], bytes: true, text: false })
    assert.equal(await a.evaluate(() => window.zerostate.runtime.stats().completed), ranOnA, 'nothing ran on A')
    assert.ok((await b.evaluate(() => window.zerostate.runtime.stats().completed)) > ranOnB, 'B ran the agent')
    assert.deepEqual(await axe(a), [], 'the task page with an image output')
    assert.deepEqual(await sideways(a), [], 'the task page at 390 px')
    thumbnailTask = decodeURIComponent(id)
  })

  it('after a reload the thumbnail and the image it was made from are still shown: outputs and file inputs are kept in the task history', {
    timeout: LIMIT
  }, async () => {
    assert.ok(thumbnailTask != null, 'the thumbnail task ran')
    await a.reload()
    await a.waitForFunction(() => window.zerostate != null)
    await a.evaluate(() => window.zerostate.ready)
    await a.waitForSelector('[data-testid="task-past"]', { timeout: 30_000 })
    /** An image's size and the colours at two points (x scaled to its width). */
    const pixels = (el) =>
      el.evaluate(async (img) => {
        await img.decode()
        const c = document.createElement('canvas')
        c.width = img.naturalWidth
        c.height = img.naturalHeight
        const g = c.getContext('2d')
        g.drawImage(img, 0, 0)
        const at = (fx) => [...g.getImageData(Math.floor(fx * img.naturalWidth), Math.floor(img.naturalHeight / 2), 1, 1).data]
        return { w: img.naturalWidth, h: img.naturalHeight, left: at(0.05), right: at(0.94) }
      })
    const img = await a.waitForSelector('[data-testid="task-result"] [data-testid="output-image"]', { timeout: 30_000 })
    const shown = await pixels(img)
    assert.deepEqual([shown.w, shown.h], [96, 64], 'the same 96×64 thumbnail')
    assert.ok(shown.left[0] > 180 && shown.right[2] > 180, `red then blue: ${shown.left} ${shown.right}`)
    assert.equal(await a.getAttribute('[data-testid="task-result"] [data-testid="output-media"]', 'data-media-type'), 'image/png')
    // The input: the 300×200 PNG picked on the Submit page, with the options it was sent with.
    const input = await a.waitForSelector('[data-testid="task-input"] [data-testid="output-image"]', { timeout: 30_000 })
    const original = await pixels(input)
    assert.deepEqual([original.w, original.h], [300, 200], 'the input image as picked')
    assert.ok(original.left[0] > 180 && original.right[2] > 180, `red then blue: ${original.left} ${original.right}`)
    assert.equal(await a.getAttribute('[data-testid="task-input"]', 'data-media-type'), 'image/png')
    assert.equal(await a.textContent('[data-testid="task-input-options"]'), '{"maxSide":96}')
    const keptInput = await a.evaluate((t) => window.zerostate.journal.get(t)?.data?.inputMedia, thumbnailTask)
    assert.equal(keptInput?.mediaType, 'image/png', JSON.stringify(keptInput))
    assert.equal(await a.$('[data-testid="step-not-kept"]'), null)
    // The API gives the bytes back too, and the journal names their type.
    const past = await a.evaluate(async (t) => {
      const r = await window.zerostate.task(t).done
      return { bytes: r.steps[0].output instanceof Uint8Array, media: window.zerostate.journal.get(t)?.data?.media }
    }, thumbnailTask)
    assert.equal(past.bytes, true)
    assert.equal(Object.values(past.media ?? {})[0]?.mediaType, 'image/png', JSON.stringify(past.media))
    assert.deepEqual(await axe(a), [], 'the reloaded task page, with its input')
    assert.deepEqual(await sideways(a), [], 'the reloaded task page at 390 px')

    // Run again sends the kept file: the new task makes the same thumbnail on B.
    await a.click('[data-testid="task-run-again"]')
    await a.waitForURL((u) => u.pathname.startsWith('/tasks/') && !u.pathname.endsWith(encodeURIComponent(thumbnailTask)))
    const again = await pixels(await a.waitForSelector('[data-testid="task-result"] [data-testid="output-image"]', { timeout: 60_000 }))
    assert.deepEqual([again.w, again.h], [96, 64], 'run again made the thumbnail from the kept input')
  })

  it('a WAV dropped on the Submit page is trimmed on B and plays on A; a pasted image replaces it', { timeout: LIMIT }, async () => {
    const rate = 16000
    const samples = new Int16Array(rate * 2).map((_, i) => Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / rate)))
    const wav = encodeWav({ rate, channels: 1, samples })
    await a.goto(new URL('/submit', mesh.url).href)
    await a.waitForFunction(() => window.zerostate != null)
    await a.fill('[data-testid="submit-description"]', 'trim this recording')
    await a.selectOption('[data-testid="submit-agent"]', { label: 'audio-edit 1.0.0 (bundled)' })
    // A drop, as the browser delivers it: a DragEvent whose DataTransfer holds the file.
    await a.evaluate(
      async (bytes) => {
        const dt = new DataTransfer()
        dt.items.add(new File([new Uint8Array(bytes)], 'tone.wav', { type: 'audio/wav' }))
        document.querySelector('[data-testid="submit-drop"]').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
      },
      [...wav]
    )
    await a.waitForSelector('[data-testid="submit-preview"][data-kind="audio"] audio')
    // A pasted image (a screenshot) replaces the file; then the WAV is dropped again.
    await a.evaluate(
      async (bytes) => {
        const dt = new DataTransfer()
        dt.items.add(new File([new Uint8Array(bytes)], 'screenshot.png', { type: 'image/png' }))
        document.body.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))
      },
      [...encodePng(4, 4, () => [0, 0, 0, 255])]
    )
    await a.waitForSelector('[data-testid="submit-preview"][data-kind="image"]')
    assert.match(await a.textContent('[data-testid="submit-file-note"]'), /screenshot\.png/)
    await a.evaluate(
      async (bytes) => {
        const dt = new DataTransfer()
        dt.items.add(new File([new Uint8Array(bytes)], 'tone.wav', { type: 'audio/wav' }))
        document.querySelector('[data-testid="submit-drop"]').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
      },
      [...wav]
    )
    await a.waitForSelector('[data-testid="submit-preview"][data-kind="audio"]')
    // Options that are not one JSON object are refused before anything is sent.
    await a.fill('[data-testid="submit-input"]', 'end=0.5')
    await a.click('[data-testid="submit-button"]')
    assert.match(await a.textContent('[data-testid="submit-error"]'), /must be one JSON object/)
    await a.fill('[data-testid="submit-input"]', '{"start": 0.5, "end": 1.25}')
    await a.click('[data-testid="submit-button"]')
    await a.waitForURL(/\/tasks\//)
    const audio = await a.waitForSelector('[data-testid="output-audio"]', { timeout: 60_000 })
    const duration = await audio.evaluate(
      (el) =>
        new Promise((resolve, reject) => {
          if (el.readyState >= 1) resolve(el.duration)
          el.addEventListener('loadedmetadata', () => resolve(el.duration))
          el.addEventListener('error', () => reject(new Error(`the audio did not load: ${el.error?.message}`)))
          setTimeout(() => reject(new Error(`no metadata after 20 s: readyState ${el.readyState}, networkState ${el.networkState}, src ${el.src}`)), 20_000)
        })
    )
    assert.ok(Math.abs(duration - 0.75) < 0.01, `the trimmed audio lasts 0.75 s, not ${duration}`)
    assert.equal(await a.getAttribute('[data-testid="output-media"]', 'data-media-type'), 'audio/wav')
    const id = decodeURIComponent(a.url().split('/tasks/')[1])
    assert.equal(await a.evaluate(async (taskId) => (await window.zerostate.task(taskId).done).steps[0].peer, id), ids[1])
    assert.deepEqual(await axe(a), [], 'the task page with an audio output')
  })
})
