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
