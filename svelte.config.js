import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import adapter from '@sveltejs/adapter-static'
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte'
import { cspDirectives, inlineScriptHashes, modelHosts } from './relay/csp.js'

// src/app.html's own inline scripts are not hashed by SvelteKit: hash them here, so the
// policy follows an edit of that file (relay/csp.js says what the policy allows and why).
const appHtml = readFileSync(new URL('./src/app.html', import.meta.url), 'utf8')
const scriptHashes = inlineScriptHashes(appHtml, (text) => createHash('sha256').update(text).digest('base64'))

/** @type {import('@sveltejs/kit').Config} */
export default {
  preprocess: vitePreprocess(),
  compilerOptions: { runes: true },
  kit: {
    // A single-page app: the relay serves index.html for every path it does not know.
    adapter: adapter({ fallback: 'index.html', strict: false }),
    serviceWorker: { register: false },
    // Content-Security-Policy (issue 11): hashes of SvelteKit's inline scripts, in a <meta>
    // of every built page; the relay sends the same policy as a header (relay/server.ts).
    csp: {
      mode: 'hash',
      directives: /** @type {NonNullable<import('@sveltejs/kit').KitConfig['csp']>['directives']} */ (cspDirectives({ modelHosts: modelHosts(), scriptHashes }))
    }
  }
}
