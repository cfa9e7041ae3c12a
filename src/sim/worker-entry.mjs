// The simulator's worker threads start here: TypeScript through tsx (as `node --import tsx`
// does for the main thread, and whatever runs the main thread: node, vitest), then worker.ts.
import { register } from 'tsx/esm/api'

register()
await import('./worker.ts')
