/**
 * libp2p's metrics into a peer's MetricsRegistry (issue 15): `libp2pMetrics(registry)` is
 * libp2p's `Metrics` service (pass it as `metrics` to createLibp2p): every metric libp2p
 * and its services register (connections, streams, dials, peer store…) becomes a series
 * of the registry, and bytes per protocol are counted on each connection and stream.
 * `gossipsubMetricsRegister(registry)` is the same for gossipsub's `metricsRegister`.
 * Tracing hooks are no-ops: our traces are core/trace's.
 */
import type {
  CalculatedMetricOptions,
  Counter,
  CounterGroup,
  Histogram as Libp2pHistogram,
  HistogramGroup,
  HistogramOptions,
  Metric,
  MetricGroup,
  MetricOptions,
  Metrics,
  MultiaddrConnection,
  Stream,
  Summary,
  SummaryGroup
} from '@libp2p/interface'
import { normalizeBounds } from './histogram.ts'
import type { GaugeMetric, HistogramMetric, MetricsRegistry } from './metrics.ts'

/** Buckets of libp2p's histograms when it names none (prom-client's defaults: seconds). */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Bytes sent and received per protocol ('global' for whole connections). */
export const TRANSFER_METRIC = 'libp2p_data_transfer_bytes_total'

type Calculate = () => unknown
type Opts = Partial<CalculatedMetricOptions<unknown>> & MetricOptions & HistogramOptions

/** The last value of a calculate function (a promise's once it settles), for a synchronous snapshot. */
function reader(calculate: Calculate): () => number | Record<string, number> | undefined {
  let last: number | Record<string, number> | undefined
  return () => {
    const v = calculate()
    if (v instanceof Promise)
      v.then(
        (r) => {
          last = r as typeof last
        },
        () => {}
      )
    else last = v as typeof last
    return last
  }
}

function timerOf(observe: (seconds: number) => void): () => () => void {
  return () => {
    const t0 = performance.now()
    return () => {
      observe((performance.now() - t0) / 1000)
    }
  }
}

/** libp2p's `Metrics` service writing into `registry`. */
export function libp2pMetrics(registry: MetricsRegistry): () => Metrics {
  return () => {
    const transfer = registry.counter(TRANSFER_METRIC, { help: 'Bytes sent and received per protocol', labelNames: ['protocol', 'direction'] })
    /** Count bytes without a 'message' listener: one would drain a stream before its reader attaches. */
    const track = (stream: Stream | MultiaddrConnection, protocol: string): void => {
      // Every message of the stream counts under the same labels: bound once, not looked up per message.
      const received = transfer.bind({ protocol, direction: 'received' })
      const sent = transfer.bind({ protocol, direction: 'sent' })
      const dispatch = stream.dispatchEvent.bind(stream)
      stream.dispatchEvent = (evt: Event) => {
        if (evt.type === 'message') received((evt as Event & { data: { byteLength: number } }).data.byteLength)
        return dispatch(evt)
      }
      const send = stream.send.bind(stream)
      stream.send = (...args: Parameters<typeof send>) => {
        sent(args[0].byteLength)
        return send(...args)
      }
    }
    const gauge = (name: string, opts: Opts | undefined, group: boolean): GaugeMetric =>
      registry.gauge(name, {
        help: opts?.help,
        labelNames: group ? [opts?.label ?? 'key'] : [],
        ...(opts?.calculate != null ? { collect: reader(opts.calculate) } : {})
      })
    const histogram = (name: string, opts: Opts | undefined, group: boolean): HistogramMetric =>
      registry.histogram(name, { help: opts?.help, labelNames: group ? [opts?.label ?? 'key'] : [], buckets: normalizeBounds(opts?.buckets, DEFAULT_BUCKETS) })

    const metric = (name: string, opts?: Opts): Metric => {
      const g = gauge(name, opts, false)
      return {
        update: (v) => g.set(v),
        increment: (v = 1) => g.inc(v),
        decrement: (v = 1) => g.dec(v),
        reset: () => g.reset(),
        timer: timerOf((s) => g.set(s))
      }
    }
    const metricGroup = (name: string, opts?: Opts): MetricGroup => {
      const g = gauge(name, opts, true)
      const label = opts?.label ?? 'key'
      const each = (values: Record<string, number | true | undefined>, f: (v: number, l: Record<string, string>) => void): void => {
        for (const [k, v] of Object.entries(values)) if (v !== undefined) f(v === true ? 1 : v, { [label]: k })
      }
      return {
        update: (values) => each(values, (v, l) => g.set(v, l)),
        increment: (values) => each(values, (v, l) => g.inc(v, l)),
        decrement: (values) => each(values, (v, l) => g.dec(v, l)),
        reset: () => g.reset(),
        timer: (key) => timerOf((s) => g.set(s, { [label]: key }))()
      }
    }
    // A calculated counter reports its current total: kept as a gauge of that total.
    const counter = (name: string, opts?: Opts): Counter => {
      if (opts?.calculate != null) {
        gauge(name, opts, false)
        return { increment: () => {}, reset: () => {} }
      }
      const c = registry.counter(name, { help: opts?.help })
      return { increment: (v = 1) => c.inc(v), reset: () => c.reset() }
    }
    const counterGroup = (name: string, opts?: Opts): CounterGroup => {
      if (opts?.calculate != null) {
        gauge(name, opts, true)
        return { increment: () => {}, reset: () => {} }
      }
      const label = opts?.label ?? 'key'
      const c = registry.counter(name, { help: opts?.help, labelNames: [label] })
      return {
        increment: (values) => {
          for (const [k, v] of Object.entries(values)) if (v !== undefined) c.inc(typeof v === 'number' ? v : 1, { [label]: k })
        },
        reset: () => c.reset()
      }
    }
    const hist = (name: string, opts?: Opts): Libp2pHistogram & Summary => {
      const h = histogram(name, opts, false)
      return { observe: (v) => h.observe(v), reset: () => h.reset(), timer: timerOf((s) => h.observe(s)) }
    }
    const histGroup = (name: string, opts?: Opts): HistogramGroup & SummaryGroup => {
      const h = histogram(name, opts, true)
      const label = opts?.label ?? 'key'
      return {
        observe: (values) => {
          for (const [k, v] of Object.entries(values)) if (typeof v === 'number') h.observe(v, { [label]: k })
        },
        reset: () => h.reset(),
        timer: (key) => timerOf((s) => h.observe(s, { [label]: key }))()
      }
    }

    const metrics = {
      [Symbol.toStringTag]: '@zerostate/libp2p-metrics',
      trackMultiaddrConnection: (maConn: MultiaddrConnection) => track(maConn, 'global'),
      trackProtocolStream: (stream: Stream) => {
        if (stream.protocol != null && stream.protocol !== '') track(stream, stream.protocol)
      },
      registerMetric: metric,
      registerMetricGroup: metricGroup,
      registerCounter: counter,
      registerCounterGroup: counterGroup,
      registerHistogram: hist,
      registerHistogramGroup: histGroup,
      registerSummary: hist,
      registerSummaryGroup: histGroup,
      traceFunction: <F>(_name: string, fn: F): F => fn,
      createTrace: () => undefined
    }
    return metrics as unknown as Metrics
  }
}

/** Labels gossipsub passes (topic, reason, …). */
type GossipLabels = Record<string, string | number>

/** gossipsub's `MetricsRegister` (@libp2p/gossipsub metrics.ts), structurally. */
export interface GossipMetricsRegister {
  gauge(config: { name: string; help: string; labelNames?: readonly string[] }): {
    inc(labelsOrValue?: GossipLabels | number, value?: number): void
    set(labelsOrValue: GossipLabels | number, value?: number): void
    // biome-ignore lint/suspicious/noExplicitAny: gossipsub's collect functions take its own typed gauge
    addCollect(fn: (metric: any) => void): void
  }
  histogram(config: { name: string; help: string; labelNames?: readonly string[]; buckets?: number[] }): {
    startTimer(): () => void
    observe(labelsOrValue: GossipLabels | number, value?: number): void
    reset(): void
  }
  avgMinMax(config: { name: string; help: string; labelNames?: readonly string[] }): {
    set(labelsOrValues: GossipLabels | number[], values?: number[]): void
  }
}

/**
 * gossipsub's metrics into `registry`. Its collect hooks (scores per peer, mesh sizes) run
 * when the registry is snapshotted, not on every message.
 */
export function gossipsubMetricsRegister(registry: MetricsRegistry): GossipMetricsRegister {
  const split = <T>(a: GossipLabels | T, b: T | undefined): [GossipLabels | undefined, T] =>
    typeof a === 'object' && a != null && !Array.isArray(a) ? [a as GossipLabels, b as T] : [undefined, a as T]
  // gossipsub counts several series per RPC it sends or receives: the numeric calls (inc(n),
  // observe(v)) and the labelled ones (inc({ topic }, n)) are told apart without the tuple
  // split() builds, which was an allocation per count (issue 16).
  return {
    gauge(config) {
      const collects: Array<(m: ReturnType<GossipMetricsRegister['gauge']>) => void> = []
      let api: ReturnType<GossipMetricsRegister['gauge']>
      const g = registry.gauge(config.name, {
        help: config.help,
        labelNames: config.labelNames ?? [],
        collect: () => {
          for (const fn of collects) fn(api)
          return undefined
        }
      })
      api = {
        inc(a, b) {
          if (a === undefined || typeof a === 'number') g.inc(a ?? 1)
          else g.inc(b ?? 1, a)
        },
        set(a, b) {
          if (typeof a === 'number') g.set(a)
          else if (b !== undefined) g.set(b, a)
        },
        addCollect(fn) {
          collects.push(fn)
        }
      }
      return api
    },
    histogram(config) {
      const h = registry.histogram(config.name, {
        help: config.help,
        labelNames: config.labelNames ?? [],
        buckets: normalizeBounds(config.buckets, DEFAULT_BUCKETS)
      })
      return {
        startTimer: timerOf((s) => h.observe(s)),
        observe(a, b) {
          if (typeof a === 'number') h.observe(a)
          else if (b !== undefined) h.observe(b, a)
        },
        reset: () => h.reset()
      }
    },
    avgMinMax(config) {
      const g = registry.gauge(config.name, { help: config.help, labelNames: [...(config.labelNames ?? []), 'stat'] })
      return {
        set(a, b) {
          const [labels, values] = split<number[] | undefined>(a, b)
          if (values == null || values.length === 0) return
          let min = Number.POSITIVE_INFINITY
          let max = Number.NEGATIVE_INFINITY
          let sum = 0
          for (const v of values) {
            sum += v
            if (v < min) min = v
            if (v > max) max = v
          }
          g.set(sum / values.length, { ...labels, stat: 'avg' })
          g.set(min, { ...labels, stat: 'min' })
          g.set(max, { ...labels, stat: 'max' })
        }
      }
    }
  }
}
