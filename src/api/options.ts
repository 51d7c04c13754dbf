/**
 * Options of {@link watch} and {@link snapshot}: checked once by the schema in
 * `src/config/poll-options.ts` (synchronously, `ERR_CONFIG` naming the option), then
 * turned into the native poller's options. The binding only converts them.
 */
import type { CheckedWatchOptions } from '../config/poll-options.js'
import type { NativePollerOptions } from '../native.js'

export {
  checkSnapshotOptions,
  checkWatchOptions,
  type ChangeRuleOptions,
  type CheckedWatchOptions,
  type FamilyOption,
  type PollMode,
  type PollOptions,
  type WatchOptions,
} from '../config/poll-options.js'
export { TCP_STATES, type TcpStateName } from '../uapi.js'

/** Converts checked options to the native poller's options. */
export function toNativeOptions(o: CheckedWatchOptions): NativePollerOptions {
  return {
    intervalMs: o.intervalMs,
    families: o.families,
    states: o.states,
    ext: o.ext,
    excludeLocal: o.excludeLocal,
    excludeSrcPorts: o.excludeSrcPorts,
    excludeDst: o.excludeDst,
    ignoreTcpInfoFields: o.change?.ignoreTcpInfoFields,
    includeMemory: o.change?.includeMemory,
    stateOnly: o.change?.stateOnly,
    destroyEvents: o.destroyEvents,
    reportUnconnected: o.reportUnconnected,
    netns: o.netns,
    queueDepth: o.queueDepth,
    maxQueuedBytes: o.maxQueuedBytes,
    maxCpu: o.maxCpu,
    eventRcvbufBytes: o.eventRcvbufBytes,
    mode: o.mode,
    countBytes: o.countBytes,
    metricPorts: o.metricPorts,
  }
}
