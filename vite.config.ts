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
        start_url: '/',
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
        // WebLLM's chunks (~6 MB each, page and worker) only matter with WebGPU: they are
        // left out of the precache by size and cached the first time they are loaded.
        maximumFileSizeToCacheInBytes: 8 * 1024 * 1024,
        // The SvelteKit integration lists every immutable chunk whatever its size: drop the big ones here.
        manifestTransforms: [async (entries) => ({ manifest: entries.filter((e) => e.size <= 3 * 1024 * 1024), warnings: [] })],
        runtimeCaching: [{
          urlPattern: ({ url }) => url.pathname.startsWith('/_app/immutable/'),
          handler: 'CacheFirst',
          options: { cacheName: 'zerostate-lazy-chunks', expiration: { maxEntries: 16 } }
        }],
        navigateFallback: '/',
        navigateFallbackDenylist: [/^\/zerostate\//]
      },
      kit: { adapterFallback: 'index.html', spa: true }
    })
  ],
  worker: { format: 'es' },
  build: { target: 'es2022' },
  test: {
    include: ['src/**/*.test.ts', 'agents/**/*.test.ts', 'relay/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['src/lib/mesh/polyfills.ts'],
    testTimeout: 20_000
  }
})
