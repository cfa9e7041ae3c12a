// See https://svelte.dev/docs/kit/types#app.d.ts
import type { ZeroStateApi } from '$lib/index'

declare global {
  namespace App {}
  interface Window {
    zerostate?: ZeroStateApi
  }
}
