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
export { Batch, Connection, type ChangeKind, type PollStats, type PollWarning } from './api/batch.js'
export { TcpinfoError, type TcpinfoErrorCode } from './errors.js'
export { TCP_STATES, type ChangeRuleOptions, type PollOptions, type TcpStateName, type WatchOptions } from './api/options.js'
export type * from './api/types.js'
export { ArchiveWriter, type ArchiveErrorCause, type ArchiveErrorEvent, type ArchiveStats, type ArchiveWriterOptions } from './archive/writer.js'
export { events, parseEvent, type EventsOptions, type FlowEvent } from './eventsocket/client.js'
export type { MlabSockId } from './eventsocket/protocol.js'
export { EventSocketServer, type EventSocketOptions, type EventSocketStats } from './eventsocket/server.js'
export { MetricsSink, type MetricsOptions, type MetricsSources } from './metrics/metrics.js'
export { BoundedQueue, NullSink, type Sink, type SinkCounters } from './sinks/sink.js'
