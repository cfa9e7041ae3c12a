import { sveltekit } from '@sveltejs/kit/vite'
import { SvelteKitPWA } from '@vite-pwa/sveltekit'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  plugins: [
    sveltekit(),
    SvelteKitPWA({
      registerType: 'autoUpdate',
      injectRegister: false,
      // Register /sw.js for the whole site, not relative to the page that loads first (/tasks/…).
      scope: '/',
      base: '/',
      manifest: {
        name: 'ZeroState',
        short_name: 'ZeroState',
        description: 'A peer-to-peer agent mesh in your browser: donate compute, run agents, submit tasks.',
        theme_color: '#0f172a',
        background_color: '#0f172a',
        display: 'standalone',
        // A stable identity for the installed app, and the whole site as its scope.
        id: '/',
        start_url: '/',
        scope: '/',
        icons: [
          { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' }
        ]
      },
      workbox: {
        // FIELD-NOTES: the worker only took control with clientsClaim + skipWaiting.
        clientsClaim: true,
        skipWaiting: true,
        globPatterns: ['client/**/*.{js,css,html,svg,png,webmanifest,wasm,json}', 'prerendered/**/*.html'],
        // WebLLM (~6 MB) lives only in the LLM worker's chunk and matters only with WebGPU:
        // keep it out of the precache and cache it the first time a model is loaded.
        // wllama (issue 14): its worker and ~10 MB WebAssembly likewise, cached when a GGUF model is first loaded.
        globIgnores: ['**/workers/llm-worker-*', '**/workers/wllama-worker-*', '**/workers/assets/wllama-*.wasm'],
        // An unminified profiling build (ZS_NO_MINIFY) has chunks over the 2 MiB default.
        ...(process.env.ZS_NO_MINIFY == null ? {} : { maximumFileSizeToCacheInBytes: 8 * 1024 * 1024 }),
        runtimeCaching: [
          {
            urlPattern: ({ url }) => url.pathname.includes('/_app/immutable/workers/llm-worker-') || url.pathname.includes('/_app/immutable/workers/wllama-'),
            handler: 'CacheFirst',
            options: { cacheName: 'zerostate-llm-worker', expiration: { maxEntries: 8 } }
          }
        ],
        navigateFallback: '/',
        navigateFallbackDenylist: [/^\/zerostate\//]
      },
      kit: { adapterFallback: 'index.html', spa: true }
    })
  ],
  worker: { format: 'es' },
  // ZS_NO_MINIFY=1 keeps names readable for CPU profiles (bench/profile-*.mjs).
  build: { target: 'es2022', minify: process.env.ZS_NO_MINIFY == null },
  test: {
    include: ['src/**/*.test.ts', 'agents/**/*.test.ts', 'relay/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['src/lib/core/polyfills.ts', 'test/unit/fast-check-setup.ts'],
    testTimeout: 20_000,
    // A suite's setup (e.g. starting the runtime's workers, which compile their WebAssembly)
    // took over vitest's 10 s default on a loaded machine (load 20) in a fresh-clone CI run.
    hookTimeout: 60_000
  }
})
