/** One-shot listing of every current TCP socket. */
import { normalizeNativeError, native } from '../native.js'
import { Batch } from './batch.js'
import { checkSnapshotOptions, toNativeOptions, type CheckedWatchOptions, type PollOptions } from './options.js'
import { resolveUuidPrefix } from './uuid.js'

/**
 * Dumps every current TCP socket once. Every connection in the result has kind `opened`.
 *
 * @example
 * const { connections } = await snapshot({ families: ['inet'] })
 * for (const c of connections) console.log(c.id?.dstIp, c.tcpInfo?.rtt)
 * @throws {TcpinfoError} `ERR_CONFIG` for bad options, synchronously, before any native call; `ERR_SOCKET`/`ERR_NETNS` when the kernel cannot be asked.
 */
export function snapshot(options: PollOptions = {}): Promise<Batch> {
  const checked = checkSnapshotOptions(options)
  return run(checked)
}

async function run(checked: CheckedWatchOptions): Promise<Batch> {
  const nativeOptions = toNativeOptions(checked)
  const prefix = resolveUuidPrefix(checked)
  try {
    return new Batch(await native().nativeSnapshot(nativeOptions), prefix)
  } catch (e) {
    throw normalizeNativeError(e)
  }
}
