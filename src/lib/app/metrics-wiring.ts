/**
 * The peer's metrics registry wired to the app (issue 15): task latency and outcome, plan
 * time, step latency per agent, bytes moved, verification overhead, the sandbox's queue
 * wait and depth, donor utilization, peers and connections by transport, bytes in and out
 * (libp2p's own metrics arrive through the mesh node's `metrics` option). Read as a flat
 * record by `metrics()` and in full by `metricsSnapshot()` (the Dashboard).
 */
import { BYTES_BUCKETS, LATENCY_MS_BUCKETS, MetricsRegistry, TRANSFER_METRIC, type MetricsSnapshot } from '../core/index.ts'
import { connectionTransport } from '../mesh/index.ts'
import type { OutcomeSink, StepOutcome, TaskHandle } from '../orchestrator/index.ts'

/** Names of the app's metrics (the Dashboard and the alerts read these). */
export const METRIC = {
  tasks: 'zs_tasks_total',
  taskLatency: 'zs_task_latency_ms',
  planTime: 'zs_plan_time_ms',
  steps: 'zs_steps_total',
  stepLatency: 'zs_step_latency_ms',
  stepBytes: 'zs_step_bytes',
  bytesMoved: 'zs_bytes_moved_total',
  verifyOverhead: 'zs_verification_overhead_ms',
  queueWait: 'zs_queue_wait_ms',
  sandboxRuns: 'zs_sandbox_runs_total',
  tasksInFlight: 'zs_tasks_in_flight',
  queueDepth: 'zs_queue_depth',
  donorBusy: 'zs_donor_busy_slots',
  donorSlots: 'zs_donor_slots',
  peers: 'zs_peers',
  connections: 'zs_connections',
  transfer: TRANSFER_METRIC
} as const

/** Label values of an agent id: its first 12 characters (ids are content hashes; names may repeat). */
export function agentLabel(agentId: string): string {
  return agentId.slice(0, 12)
}

/** What `attach` reads gauges from and instruments. Narrow, so tests pass stubs. */
export interface MetricsSources {
  /** Submitted tasks are timed from submit to done. */
  orchestrator?: { submit(request: never): TaskHandle; tasks(): Array<{ status: string }> }
  /** Agent calls: their queue wait (`waitMs` when the sandbox reports it) and the queue's depth. */
  runtime?: {
    run(...args: never[]): Promise<{ waitMs?: number }>
    stats(): { workers: number; busy: number; queued: number }
  }
  /** Donor call slots: busy and free. */
  executor?: { readonly busy: number; freeWorkers(): number }
  /** App peers, by transport. */
  mesh?: { peers(): Array<{ relay?: boolean; transport: string }> }
  /** Open connections (relays included), by transport. */
  libp2p?: { getConnections(): Array<Parameters<typeof connectionTransport>[0]> }
}

/** The app's metrics. */
export interface AppMetrics {
  readonly registry: MetricsRegistry
  /** A sink that records each step outcome, then hands it to `next`. */
  outcomes(next: OutcomeSink): OutcomeSink
  /** Time a submitted task (latency by outcome, plan time, verification overhead of its steps). */
  track<H extends TaskHandle>(handle: H): H
  /** Read gauges from these sources and time their calls (wraps `orchestrator.submit` and `runtime.run` in place). */
  attach(sources: MetricsSources): void
  record(): Record<string, number>
  snapshot(): MetricsSnapshot
}

/** Options of `appMetrics`. */
export interface AppMetricsInit {
  /** Record updates (default true); off, every update is a no-op (the bench's baseline). */
  enabled?: boolean
  registry?: MetricsRegistry
}

/** Create the app's metrics over one registry per peer. */
export function appMetrics(init: AppMetricsInit = {}): AppMetrics {
  const registry = init.registry ?? new MetricsRegistry()
  registry.enabled = init.enabled ?? true
  const tasks = registry.counter(METRIC.tasks, { help: 'Tasks submitted here, by outcome', labelNames: ['status'] })
  const taskLatency = registry.histogram(METRIC.taskLatency, {
    help: 'Submit to result of tasks submitted here (ms)',
    labelNames: ['status'],
    buckets: LATENCY_MS_BUCKETS
  })
  const planTime = registry.histogram(METRIC.planTime, {
    help: 'Planning time (ms), by planner',
    labelNames: ['planner'],
    buckets: LATENCY_MS_BUCKETS,
    maxSeries: 8
  })
  const steps = registry.counter(METRIC.steps, { help: 'Step attempts dispatched from here, by outcome', labelNames: ['status'] })
  const stepLatency = registry.histogram(METRIC.stepLatency, {
    help: 'Step attempt wall time (ms), by agent',
    labelNames: ['agent'],
    buckets: LATENCY_MS_BUCKETS
  })
  const stepBytes = registry.histogram(METRIC.stepBytes, { help: 'Bytes of a step input or output', labelNames: ['direction'], buckets: BYTES_BUCKETS })
  const bytesMoved = registry.counter(METRIC.bytesMoved, { help: 'Step input and output bytes moved', labelNames: ['direction'] })
  const verifyOverhead = registry.histogram(METRIC.verifyOverhead, {
    help: 'Time a verified step waited for its replicas after its first result (ms)',
    buckets: LATENCY_MS_BUCKETS
  })
  const queueWait = registry.histogram(METRIC.queueWait, { help: 'Time an agent call waited for a worker (ms)', buckets: LATENCY_MS_BUCKETS })
  const sandboxRuns = registry.counter(METRIC.sandboxRuns, { help: 'Agent calls run in this tab, by outcome', labelNames: ['status'] })
  /** First accepted result of each step of tracked tasks (for the verification overhead). */
  const firstResult = new Map<string, number>()

  const outcomes = (next: OutcomeSink): OutcomeSink => ({
    record(o: StepOutcome) {
      if (registry.enabled) {
        const status = o.success ? 'succeeded' : 'failed'
        steps.inc(1, { status })
        stepLatency.observe(o.durationMs, { agent: agentLabel(o.agentId) })
        stepBytes.observe(o.inputSize, { direction: 'in' })
        bytesMoved.inc(o.inputSize, { direction: 'in' })
        if (o.success) {
          stepBytes.observe(o.outputSize, { direction: 'out' })
          bytesMoved.inc(o.outputSize, { direction: 'out' })
          const key = `${o.taskId}\n${o.stepId}`
          if (!firstResult.has(key)) firstResult.set(key, performance.now())
        }
      }
      next.record(o)
    }
  })

  const track = <H extends TaskHandle>(handle: H): H => {
    if (!registry.enabled) return handle
    const t0 = performance.now()
    let planning: number | undefined
    const stepKeys: string[] = []
    const offProgress = handle.on('progress', (e) => {
      if (e.phase === 'planning' && planning == null) planning = performance.now()
      else if (e.phase === 'planned') planTime.observe(performance.now() - (planning ?? t0), { planner: e.planner ?? 'unknown' })
    })
    const offStep = handle.on('step', (e) => {
      const key = `${e.taskId}\n${e.stepId}`
      if (e.status === 'dispatched' && e.attempt <= 1) stepKeys.push(key)
      if (e.status === 'succeeded' && e.verification != null && e.verification.replicas > 1) {
        const first = firstResult.get(key)
        if (first != null) verifyOverhead.observe(performance.now() - first)
      }
    })
    const finish = (status: 'succeeded' | 'failed' | 'cancelled'): void => {
      offProgress()
      offStep()
      for (const k of stepKeys) firstResult.delete(k)
      tasks.inc(1, { status })
      taskLatency.observe(performance.now() - t0, { status })
    }
    handle.done.then(
      (r) => finish(r.status === 'succeeded' ? 'succeeded' : 'failed'),
      (err: unknown) => finish((err as Error | undefined)?.name === 'TaskCancelledError' ? 'cancelled' : 'failed')
    )
    return handle
  }

  const attach = (s: MetricsSources): void => {
    const { orchestrator, runtime, executor, mesh, libp2p } = s
    if (orchestrator != null) {
      const submit = orchestrator.submit.bind(orchestrator)
      orchestrator.submit = (request: never) => track(submit(request))
      registry.gauge(METRIC.tasksInFlight, {
        help: 'Tasks submitted here still planning or running',
        collect: () => orchestrator.tasks().filter((t) => t.status === 'planning' || t.status === 'running').length
      })
    }
    if (runtime != null) {
      const run = runtime.run.bind(runtime)
      runtime.run = async (...args: never[]) => {
        if (!registry.enabled) return await run(...args)
        try {
          const r = await run(...args)
          if (r.waitMs != null) queueWait.observe(r.waitMs)
          sandboxRuns.inc(1, { status: 'succeeded' })
          return r
        } catch (err) {
          sandboxRuns.inc(1, { status: 'failed' })
          throw err
        }
      }
      registry.gauge(METRIC.queueDepth, { help: 'Agent calls waiting for a worker', collect: () => runtime.stats().queued })
    }
    if (executor != null) {
      registry.gauge(METRIC.donorBusy, { help: 'Agent call slots in use', collect: () => executor.busy })
      registry.gauge(METRIC.donorSlots, { help: 'Agent call slots in all', collect: () => executor.busy + executor.freeWorkers() })
    }
    const byTransport = (list: Array<{ transport: string }>): Record<string, number> => {
      const out: Record<string, number> = {}
      for (const x of list) out[x.transport] = (out[x.transport] ?? 0) + 1
      return out
    }
    if (mesh != null)
      registry.gauge(METRIC.peers, {
        help: 'Connected app peers by transport',
        labelNames: ['transport'],
        maxSeries: 8,
        collect: () => byTransport(mesh.peers().filter((p) => p.relay !== true))
      })
    if (libp2p != null)
      registry.gauge(METRIC.connections, {
        help: 'Open connections by transport (relays included)',
        labelNames: ['transport'],
        maxSeries: 8,
        collect: () => byTransport(libp2p.getConnections().map((c) => ({ transport: connectionTransport(c) })))
      })
  }

  return {
    registry,
    outcomes,
    track,
    attach,
    record: () => registry.toRecord(),
    snapshot: () => registry.snapshot()
  }
}
