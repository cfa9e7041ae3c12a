// comlink 4.4.2 ships node-adapter.d.ts beside the .mjs, but without an exports map TS does not pair them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the listener type mirrors comlink's own declaration
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink'
  export interface NodeEndpoint {
    postMessage(message: unknown, transfer?: unknown[]): void
    on(type: string, listener: (value: any) => void): void
    off(type: string, listener: (value: any) => void): void
    start?: () => void
  }
  export default function nodeEndpoint(nep: NodeEndpoint): Endpoint
}
