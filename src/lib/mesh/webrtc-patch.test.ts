import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

// The 20-formation browser test is what catches the race itself (FIELD-NOTES: half of the
// unpatched three-tab runs failed); this guards against installing without the patch.
describe('@libp2p/webrtc init-channel race patch', () => {
  it('is applied to the installed package', () => {
    const url = new URL('../../../node_modules/@libp2p/webrtc/dist/src/private-to-private/initiate-connection.js', import.meta.url)
    const file = readFileSync(url, 'utf8')
    expect(file).toContain("if (channel.readyState === 'connecting')")
    expect(file).not.toMatch(/if \(channel\.readyState !== 'open'\) \{\s*log\.trace\('wait for init channel to open'\);/)
  })
})
