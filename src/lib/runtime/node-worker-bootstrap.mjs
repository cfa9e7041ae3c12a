// Node worker bootstrap: worker threads cannot load .ts by themselves (and vitest
// does not bundle workers), so register tsx's loader, then load the TS entry.
import { register } from 'tsx/esm/api'

register()
await import('./agent-worker-node.ts')
