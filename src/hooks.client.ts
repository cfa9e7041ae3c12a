// SvelteKit runs `init` once, when the app starts in the browser, before it loads and draws
// the first page: the mesh starts joining here, in parallel with the app shell (issue 11:
// a new tab joins within 3 s). The boot's chunk holds the mesh and identity only; the rest of the
// app loads while the node dials. The layout picks up the same start (src/lib/ui/boot.ts).
import { bootZeroState } from '$lib/ui/boot'

export function init(): void {
  // Not awaited: the first page must not wait for the mesh. A failure is shown by the layout.
  bootZeroState().catch(() => {})
}
