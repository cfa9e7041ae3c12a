/**
 * What every layer shares and nothing else: the error base, the logger, counters,
 * the protocol codec (framing), signing identity, backoff, the stream host shape.
 * Imports nothing of ours (STYLE.md "The shape of the house").
 */
export { ZeroStateError, CoreError, InvalidFrameError, FrameTooLargeError, FrameTimeoutError, StreamEndedError, InvalidSignatureError } from './errors.ts'
export {
  WorkerError,
  WorkerTimeoutError,
  WorkerAbortedError,
  WorkerCrashedError,
  WorkerStoppedError
} from './errors.ts'
export {
  SupervisedWorker,
  webWorkerHandle,
  nodeWorkerHandle,
  type SupervisedWorkerInit,
  type SupervisedCallOptions,
  type WorkerHandle,
  type WorkerSpawn,
  type NodeWorkerLike,
  type ReplaceReason
} from './supervised-worker.ts'
export {
  logger,
  type Logger,
  LOG_LEVELS,
  LOG_CAPACITY,
  LOG_LEVELS_KEY,
  setLogLevel,
  logLevels,
  logRecords,
  logStats,
  clearLogs,
  onLog,
  withLogContext,
  setLogContextResolver,
  captureContext,
  formatLog,
  libp2pDebug,
  setLibp2pDebug,
  type LogLevel,
  type LogRecord,
  type LogContext
} from './logger.ts'
export { RingBuffer } from './log-ring.ts'
export {
  Counters,
  MetricsRegistry,
  CounterMetric,
  GaugeMetric,
  HistogramMetric,
  MAX_SERIES,
  seriesKey,
  type Labels,
  type MetricInit,
  type MetricsSnapshot
} from './metrics.ts'
export { Histogram, LATENCY_MS_BUCKETS, BYTES_BUCKETS, quantile, difference, merge, normalizeBounds, type HistogramSnapshot } from './histogram.ts'
export { libp2pMetrics, gossipsubMetricsRegister, TRANSFER_METRIC, type GossipMetricsRegister } from './libp2p-metrics.ts'
export { IdbValue } from './idb-value.ts'
export { abortableSleep, backoffDelay, settledWithin } from './backoff.ts'
export {
  TypedEventEmitter,
  ChangeNotifier,
  listen,
  coalesce,
  type TypedEventTarget,
  type EventMap,
  type ListenOptions,
  type Coalesced,
  type CoalesceInit,
  type ChangeEvents,
  type ChangeNotifierInit
} from './events.ts'
export {
  defineProtocol,
  framed,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_FRAME_TIMEOUT_MS,
  type FramedStream,
  type FramedInit,
  type ProtocolDefinition
} from './framing.ts'
export type { StreamHost } from './stream-host.ts'
export { closedWhileOpening, closedWhileOpeningReason } from './stream-host.ts'
export {
  loadIdentity,
  signJson,
  verifyJson,
  canonicalBytes,
  toPublicKeyString,
  MemoryKeyStore,
  IndexedDbKeyStore,
  type Identity,
  type KeyStore,
  type PublicKeyString
} from './identity.ts'
export { webCryptoEd25519 } from './webcrypto-key.ts'
export {
  PAYLOAD_CHUNK_BYTES,
  PAYLOAD_CHUNK_CHARS,
  MAX_PAYLOAD_BYTES,
  PAYLOAD_KINDS,
  PayloadDescriptorSchema,
  PayloadChunkEntries,
  PayloadAssembler,
  PayloadError,
  PayloadIntegrityError,
  PayloadTooLargeError,
  PayloadAbortedError,
  PayloadStalledError,
  PAYLOAD_STALL_MS,
  type PayloadAssemblerOptions,
  encodePayload,
  decodePayload,
  describePayload,
  payloadChunks,
  sendPayloadChunks,
  chunkCount,
  isBytes,
  sha256Hex,
  sha256HexAsync,
  toBase64,
  fromBase64,
  type PayloadKind,
  type PayloadDescriptor,
  type PayloadChunk,
  type PayloadProgress,
  type EncodedPayload,
  type SendPayloadOptions
} from './payload.ts'
export * from './trace/index.ts'
export { pick, seededRandom, shuffle } from './random.ts'
