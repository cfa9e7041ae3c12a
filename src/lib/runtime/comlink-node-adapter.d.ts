// comlink 4.4.2 ships node-adapter.d.ts beside the .mjs, but without an exports map TS does not pair them.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink'
  export interface NodeEndpoint {
    postMessage(message: unknown, transfer?: unknown[]): void
    // biome-ignore lint/suspicious/noExplicitAny: mirrors comlink's own declaration (listeners take any message)
    on(type: string, listener: (value: any) => void): void
    // biome-ignore lint/suspicious/noExplicitAny: as above
    off(type: string, listener: (value: any) => void): void
    start?: () => void
  }
  export default function nodeEndpoint(nep: NodeEndpoint): Endpoint
}
