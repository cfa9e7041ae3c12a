import { logger as libp2pLogger, type Logger } from '@libp2p/logger'

/** A scoped logger: `logger('mesh:dispatch')` logs under `zerostate:mesh:dispatch` (enable with localStorage.debug). */
export function logger(scope: string): Logger {
  return libp2pLogger(`zerostate:${scope}`)
}
export type { Logger }
