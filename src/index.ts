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
export { rtt, RttBatch, type RttCapture, type RttOptions } from './rtt/rtt.js'
export { flowKey, type RttFlow, type RttFlowSummary, type RttSample, type RttStats } from './rtt/records.js'
