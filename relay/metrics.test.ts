import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RELAYS_PATH } from '../src/lib/mesh/index.ts'
import { relayLog } from './log.ts'
import { relayTestClients } from './test-clients.ts'
import { startRelay, type Relay } from './relay.ts'
import { METRICS_PATH, startAppServer } from './server.ts'

const ECHO = '/zerostate-test/echo/1.0.0'

/** Scrape and parse with a Prometheus text parser (not a regex): families by name. */
async function scrape(url: string): Promise<Map<string, PrometheusFamily>> {
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return new Map(parsePrometheusTextFormat(await res.text()).map((f) => [f.name, f]))
}

/** The value of an unlabelled counter or gauge. */
function value(families: Map<string, PrometheusFamily>, name: string): number {
  const family = families.get(name)
  if (family == null) throw new Error(`no metric ${name} in the scrape`)
  return Number(family.metrics[0]?.value)
}

describe('relay GET /metrics (issue 15)', () => {
  let relay: Relay
  let app: Awaited<ReturnType<typeof startAppServer>>
  let dir: string
  let root: string
  let url: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zs-relay-metrics-'))
    root = mkdtempSync(join(tmpdir(), 'zs-relay-root-'))
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>app</title>')
    relay = await startRelay({ dataDir: dir, log: relayLog('silent') })
    app = await startAppServer({ host: '127.0.0.1', port: 0, root, relays: () => relay.multiaddrs(), metrics: () => relay.metrics.scrape() })
    url = `http://127.0.0.1:${app.port}${METRICS_PATH}`
  })
  afterAll(async () => {
    await stopAll()
    await app?.close()
    await relay?.stop()
    rmSync(dir, { recursive: true, force: true })
    rmSync(root, { recursive: true, force: true })
  })

  const { client, stopAll } = relayTestClients()

  it('parses as Prometheus text; the relay own metrics move as peers connect, reserve, relay and leave; libp2p metrics are there', async () => {
    const before = await scrape(url)
    expect(value(before, 'zerostate_relay_peers_connected')).toBe(0)
    expect(value(before, 'zerostate_relay_joins_total')).toBe(0)
    expect(value(before, 'zerostate_relay_reservations_active')).toBe(0)
    expect(before.get('zerostate_relay_circuit_duration_seconds')?.type).toBe('HISTOGRAM')

    // A listens through the relay (a reservation); B dials A over the circuit and echoes 10 KiB.
    const relayAddr = relay.multiaddrs()[0] as string
    const a = await client([`${relayAddr}/p2p-circuit`])
    await a.handle(
      ECHO,
      async (stream) => {
        for await (const chunk of stream) stream.send(chunk)
        await stream.close()
      },
      { runOnLimitedConnection: true }
    )
    await expect.poll(() => a.getMultiaddrs().some((ma) => ma.toString().includes('/p2p-circuit')), { timeout: 10_000 }).toBe(true)
    const circuitAddr = a.getMultiaddrs().find((ma) => ma.toString().includes('/p2p-circuit'))
    const b = await client()
    const conn = await b.dial(multiaddr(circuitAddr?.toString() as string))
    const stream = await conn.newStream(ECHO, { runOnLimitedConnection: true })
    const payload = new Uint8Array(10 * 1024).fill(7)
    stream.send(payload)
    let echoed = 0
    for await (const chunk of stream) {
      echoed += chunk.byteLength
      if (echoed >= payload.byteLength) break
    }
    expect(echoed).toBe(payload.byteLength)

    const during = await scrape(url)
    expect(value(during, 'zerostate_relay_peers_connected')).toBe(2)
    expect(value(during, 'zerostate_relay_joins_total')).toBe(2)
    expect(value(during, 'zerostate_relay_reservations_active')).toBe(1)
    expect(value(during, 'zerostate_relay_circuits_total')).toBe(1)
    // Both directions of the echo went through the relay (plus a few bytes of handshakes).
    expect(value(during, 'zerostate_relay_relayed_bytes_total')).toBeGreaterThanOrEqual(2 * payload.byteLength)
    // libp2p's own metrics, through its Metrics interface.
    const transfer = during.get('libp2p_data_transfer_bytes_total')
    expect(transfer?.metrics.some((m) => m.labels?.protocol === 'global sent' && Number(m.value) > 0)).toBe(true)
    expect(during.has('libp2p_connection_manager_connections')).toBe(true)

    // The circuit closes: its duration is observed. B leaves, then A: leaves count, peers fall.
    await conn.close()
    await expect.poll(async () => Number((await scrape(url)).get('zerostate_relay_circuit_duration_seconds')?.metrics[0]?.count), { timeout: 10_000 }).toBe(1)
    await b.stop()
    await a.stop()
    await expect.poll(async () => value(await scrape(url), 'zerostate_relay_leaves_total'), { timeout: 10_000 }).toBe(2)
    const after = await scrape(url)
    expect(value(after, 'zerostate_relay_peers_connected')).toBe(0)
    expect(value(after, 'zerostate_relay_reservations_active')).toBe(0)
  })

  it('keeps the app routes and their CSP header; /metrics refuses other methods', async () => {
    const page = await fetch(`http://127.0.0.1:${app.port}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
    const relays = (await (await fetch(`http://127.0.0.1:${app.port}${RELAYS_PATH}`)).json()) as { relays: string[] }
    expect(relays.relays).toEqual(relay.multiaddrs())
    expect((await fetch(url, { method: 'POST' })).status).toBe(405)
  })
})
