// @ts-check
/**
 * The app's Content-Security-Policy, in one place for both places that set it (issue 11):
 * SvelteKit's `kit.csp` (svelte.config.js; hash mode, so the built pages carry it as a
 * <meta http-equiv> with hashes of SvelteKit's own inline scripts) and the relay's HTTP
 * server (relay/server.ts, the same policy as a header, narrowed to the relay's own
 * WebSocket addresses). A page under both obeys both.
 *
 * What the app needs: its own scripts and workers ('self'; agents and the LLM run in
 * module workers), WebAssembly compiled from bytes ('wasm-unsafe-eval': agents are WASM
 * modules fetched from peers), WebSockets to the relays, fetches of its own origin and of
 * the model hosts (WebLLM and wllama download weights and model libraries), inline styles
 * (Svelte transitions create <style> elements), images from itself, data: and blob: URLs, audio
 * and video from itself and blob: URLs (media outputs and previews).
 * Nothing else: no inline script but the hashed ones, no eval, no plugins, no framing.
 */

/**
 * Where WebLLM and wllama download models by default: Hugging Face (weights, and its CDN
 * and storage hosts it redirects to) and GitHub raw content (WebLLM's compiled model
 * libraries). A deployment that mirrors models sets ZEROSTATE_MODEL_HOSTS (space- or
 * comma-separated origins) at build time and for the relay.
 */
export const DEFAULT_MODEL_HOSTS = Object.freeze(['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co', 'https://raw.githubusercontent.com'])

/**
 * The model hosts in force: `ZEROSTATE_MODEL_HOSTS` when set, else DEFAULT_MODEL_HOSTS.
 * @param {Record<string, string | undefined>} [env]
 * @returns {string[]}
 */
export function modelHosts(env = process.env) {
  const raw = env.ZEROSTATE_MODEL_HOSTS
  if (raw == null || raw.trim() === '') return [...DEFAULT_MODEL_HOSTS]
  return raw.split(/[\s,]+/).filter((h) => /^(https?|wss?):\/\/[A-Za-z0-9*.-]+(:\d+)?$/.test(h))
}

/**
 * The policy's directives, as SvelteKit's kit.csp.directives takes them (quoted keywords
 * unquoted). `relays`: the WebSocket origins of the relays (default: any ws:/wss:, since the
 * built app does not know where it will be deployed; the relay's header narrows it).
 * @param {{ modelHosts?: string[], relays?: string[], scriptHashes?: string[] }} [opts]
 * @returns {Record<string, string[]>}
 */
export function cspDirectives(opts = {}) {
  return {
    'default-src': ['self'],
    'script-src': ['self', 'wasm-unsafe-eval', ...(opts.scriptHashes ?? [])],
    'worker-src': ['self', 'blob:'],
    'connect-src': ['self', ...(opts.relays ?? ['ws:', 'wss:']), ...(opts.modelHosts ?? modelHosts())],
    'style-src': ['self', 'unsafe-inline'],
    'img-src': ['self', 'data:', 'blob:'],
    // Audio and video an agent returned (or a file previewed on the Submit page) play from blob: URLs.
    'media-src': ['self', 'blob:'],
    'font-src': ['self', 'data:'],
    'manifest-src': ['self'],
    'object-src': ['none'],
    'base-uri': ['self'],
    'form-action': ['self']
  }
}

const KEYWORDS = new Set(['self', 'none', 'unsafe-inline', 'unsafe-eval', 'wasm-unsafe-eval', 'strict-dynamic', 'unsafe-hashes'])

/**
 * The header value of a policy. The header may also forbid framing (a <meta> cannot).
 * @param {Record<string, string[]>} directives
 * @returns {string}
 */
export function cspHeader(directives) {
  const quote = (/** @type {string} */ s) => (KEYWORDS.has(s) || /^(sha256|sha384|sha512|nonce)-/.test(s) ? `'${s}'` : s)
  const all = { ...directives, 'frame-ancestors': ['none'] }
  return Object.entries(all)
    .map(([k, vs]) => `${k} ${vs.map(quote).join(' ')}`)
    .join('; ')
}

/**
 * sha256 hashes (CSP source form, unquoted) of the inline <script> elements of an HTML
 * template, e.g. src/app.html, whose scripts SvelteKit does not hash itself.
 * @param {string} html
 * @param {(text: string) => string} sha256Base64
 * @returns {string[]}
 */
export function inlineScriptHashes(html, sha256Base64) {
  const out = []
  for (const m of html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)) out.push(`sha256-${sha256Base64(m[1] ?? '')}`)
  return out
}
