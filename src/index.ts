/**
 * tcpinfo: watch every TCP connection of a Linux host through netlink `inet_diag`.
 *
 * @example
 * import { watch } from 'tcpinfo'
 * for await (const batch of watch()) console.log(batch.opened.length, batch.closed.length)
 * @packageDocumentation
 */
export { AbortError, watch, type Watcher } from './api/watch.js'
export { snapshot } from './api/snapshot.js'
export { Batch, Connection, type ChangeKind, type Netns, type PollStats, type PollWarning } from './api/batch.js'
export { ERROR_CODES, TcpinfoError, type TcpinfoErrorCode } from './errors.js'
export { TCP_STATES, type ChangeRuleOptions, type FamilyOption, type PollOptions, type TcpStateName, type WatchOptions } from './api/options.js'
export { STATE_GROUPS, STATE_NAMES, WARNING_CODES, type FamilyName, type WarningCode } from './uapi.js'
export type * from './api/types.js'
export { ArchiveWriter, type ArchiveErrorCause, type ArchiveErrorEvent, type ArchiveStats, type ArchiveWriterOptions } from './archive/writer.js'
export { type RecordMetadata } from './api/batch.js'
export { readArchive, ArchiveReader, ArchiveReadError, type ArchiveErrorKind, type ReadArchiveOptions } from './archive/read-archive.js'
export { ArchiveBatch, type ArchiveStats as ArchiveReadStats } from './archive/archive-batch.js'
export { writeArchiveCsv, writeArchiveJson, csvColumns, type ArchiveCsvOptions } from './archive/csv.js'
export type { ArchiveInput } from './archive/sources.js'
export { writeReport, type ReportOptions } from './report/write-report.js'
export { analyzeArchive, type AnalyzedConnection, type ConnectionSummary } from './report/analyze.js'
export { verdictOf, type Verdict, type LimitKind } from './report/verdict.js'
export { events, parseEvent, type EventsOptions, type FlowEvent } from './eventsocket/client.js'
export type { MlabSockId } from './eventsocket/protocol.js'
export { EventSocketServer, type EventSocketOptions, type EventSocketStats } from './eventsocket/server.js'
export { MetricsSink, type MetricsOptions, type MetricsSources } from './metrics/metrics.js'
export { BoundedQueue, NullSink, type Sink, type SinkCounters } from './sinks/sink.js'
export { KafkaSink, KAFKA_COMPRESSIONS, KAFKA_FORMATS, type KafkaCompression, type KafkaFormat, type KafkaSample, type KafkaSaslMechanism, type KafkaSinkOptions, type KafkaSinkStats } from './sinks/kafka-sink.js'
export { rtt, RttBatch, type RttCapture, type RttOptions } from './rtt/rtt.js'
export { flowKey, type RttFlow, type RttFlowSummary, type RttSample, type RttStats } from './rtt/records.js'
