/**
 * What the browser gives the mesh code and Node 20 does not: a WebSocket (the relays are
 * reached over WebSockets; Node has one only from 22). Installed before the mesh is loaded.
 */
// @ts-expect-error ws ships no types here; only its WebSocket class is used
import { WebSocket as WsWebSocket } from 'ws'

if (typeof globalThis.WebSocket !== 'function') {
  ;(globalThis as { WebSocket?: unknown }).WebSocket = WsWebSocket
}
