import adapter from '@sveltejs/adapter-static'
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte'

/** @type {import('@sveltejs/kit').Config} */
export default {
  preprocess: vitePreprocess(),
  compilerOptions: { runes: true },
  kit: {
    // A single-page app: the relay serves index.html for every path it does not know.
    adapter: adapter({ fallback: 'index.html', strict: false }),
    serviceWorker: { register: false }
  }
}
