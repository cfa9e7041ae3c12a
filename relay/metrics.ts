/**
 * The relay's Prometheus metrics (issue 15): one prom-client registry per relay holding
 * libp2p's own metrics (fed through libp2p's `Metrics` interface by
 * @libp2p/prometheus-metrics: connections, streams, bytes per protocol, and Node's process
 * metrics) and the relay's (peers connected, reservations active, joins, leaves, bytes
 * relayed, circuit durations). `GET /metrics` answers `scrape()`.
 */
import type { ComponentLogger, Metrics, Stream } from '@libp2p/interface'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The circuit relay's stop protocol: the relay opens one such stream to the destination of each circuit. */
export const STOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/stop'

/** Circuit durations in seconds: a WebRTC signalling circuit lasts about a second, a relayed connection up to the 10 min limit. */
const CIRCUIT_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600]

/** What the relay's gauges read when scraped. */
export interface RelayGaugeSources {
  peers(): number
  reservations(): number
  /** What the relay's guard did since it started (issue 11): read at each scrape. */
  guard?(): RelayGuardCounts
}

/** The relay's blocks and refusals since it started, as `/metrics` exports them. */
export interface RelayGuardCounts {
  /** Peers blocked (a frame over a reader's cap, a reservation held without a presence, refused gossip), each for 60 s. */
  blocked: number
  /** Strikes for gossip the validators refused (a block at the fifth). */
  gossipStrikes: number
  /** Refusals by reason: reservations over an address's share or the cap, over an identity's rate, over an address's unproven holders, upgrades over the pending limit, roster asks over budget. */
  refused: { perAddress: number; full: number; rate: number; unproven: number; pending: number; roster: number }
  /** Reservations given up to a newcomer from a less-served address. */
  evicted: number
  /** Of `blocked`: holders of a reservation without a presence past the grace, from a crowded address. */
  squatters: number
}

/** The relay's metrics. */
export interface RelayMetrics {
  readonly registry: Registry
  /** Pass as `metrics` to createLibp2p: libp2p's metrics land in `registry`, and circuits are measured. */
  libp2p(components: { logger: ComponentLogger }): Metrics
  /** Read the gauges from a running relay. */
  bind(sources: RelayGaugeSources): void
  joined(): void
  left(): void
  /** Prometheus text (version 0.0.4) of everything in the registry. */
  scrape(): Promise<{ contentType: string; body: string }>
}

/** Create a relay's registry and metrics. */
export function relayMetrics(): RelayMetrics {
  const registry = new Registry()
  let sources: RelayGaugeSources | undefined
  const registers = [registry]
  new Gauge({
    name: 'zerostate_relay_peers_connected',
    help: 'Peers with an open connection to the relay',
    registers,
    collect() {
      this.set(sources?.peers() ?? 0)
    }
  })
  new Gauge({
    name: 'zerostate_relay_reservations_active',
    help: 'Circuit relay reservations held now',
    registers,
    collect() {
      this.set(sources?.reservations() ?? 0)
    }
  })
  // Read from the relay's own counts at each scrape (a counter reset to their value: they only grow).
  const guardCounter = (name: string, help: string, pick: (g: RelayGuardCounts) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        const g = sources?.guard?.()
        this.reset()
        if (g != null) this.inc(pick(g))
      }
    })
  }
  guardCounter(
    'zerostate_relay_peers_blocked_total',
    'Peers the relay blocked for 60 s (a frame over a reader cap, e.g. a hop length-prefix bomb; a reservation held without a presence; five refused gossip messages)',
    (g) => g.blocked
  )
  new Counter({
    name: 'zerostate_relay_refused_total',
    help: "What the relay refused: reservations over an address share or the cap (per-address, full), over an identity rate (rate), over an address's holders without a presence (unproven), upgrades over the pending limit (pending), roster asks over budget (roster)",
    labelNames: ['reason'],
    registers,
    collect() {
      const g = sources?.guard?.()
      this.reset()
      if (g == null) return
      for (const [reason, n] of Object.entries({
        'per-address': g.refused.perAddress,
        full: g.refused.full,
        rate: g.refused.rate,
        unproven: g.refused.unproven,
        pending: g.refused.pending,
        roster: g.refused.roster
      }))
        this.inc({ reason }, n)
    }
  })
  guardCounter(
    'zerostate_relay_gossip_strikes_total',
    'Strikes for gossip the validators refused (presence, discovery); the fifth blocks the peer',
    (g) => g.gossipStrikes
  )
  guardCounter(
    'zerostate_relay_squatters_blocked_total',
    'Of the peers blocked: holders of a reservation that gossiped no presence within the grace, from an address holding a crowd of them',
    (g) => g.squatters
  )
  guardCounter(
    'zerostate_relay_reservations_evicted_total',
    'Reservations given up to a newcomer from a less-served address (max-min fair share)',
    (g) => g.evicted
  )
  const joins = new Counter({ name: 'zerostate_relay_joins_total', help: 'Peers that connected (first connection)', registers })
  const leaves = new Counter({ name: 'zerostate_relay_leaves_total', help: 'Peers that disconnected (last connection closed)', registers })
  const relayed = new Counter({
    name: 'zerostate_relay_relayed_bytes_total',
    help: 'Bytes carried through relayed circuits (both directions, counted on the stop stream)',
    registers
  })
  const circuits = new Counter({ name: 'zerostate_relay_circuits_total', help: 'Circuits the relay opened to a destination', registers })
  const circuitSeconds = new Histogram({
    name: 'zerostate_relay_circuit_duration_seconds',
    help: 'How long relayed circuits stayed open',
    buckets: CIRCUIT_BUCKETS,
    registers
  })

  /** Count a circuit's bytes without a `message` listener (one would drain the stream before its reader attaches). */
  const measureCircuit = (stream: Stream): void => {
    circuits.inc()
    const opened = performance.now()
    const dispatch = stream.dispatchEvent.bind(stream)
    stream.dispatchEvent = (evt: Event) => {
      if (evt.type === 'message') relayed.inc((evt as Event & { data: { byteLength: number } }).data.byteLength)
      return dispatch(evt)
    }
    const send = stream.send.bind(stream)
    stream.send = (buf) => {
      relayed.inc(buf.byteLength)
      return send(buf)
    }
    stream.addEventListener(
      'close',
      () => {
        circuitSeconds.observe((performance.now() - opened) / 1000)
      },
      { once: true }
    )
  }

  return {
    registry,
    libp2p(components) {
      // preserveExistingMetrics: false clears the package's module-wide metric map, so a
      // second relay in one process registers its own metrics in its own registry.
      const metrics = prometheusMetrics({ registry, preserveExistingMetrics: false })(components)
      const track = metrics.trackProtocolStream.bind(metrics)
      metrics.trackProtocolStream = (stream) => {
        track(stream)
        if (stream.protocol === STOP_PROTOCOL && stream.direction === 'outbound') measureCircuit(stream)
      }
      return metrics
    },
    bind(s) {
      sources = s
    },
    joined() {
      joins.inc()
    },
    left() {
      leaves.inc()
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    }
  }
}
