/** M-Lab connection UUID prefixes. */
import { callNative, native } from '../native.js'
import type { CheckedWatchOptions } from './options.js'

/** The UUID prefix for `o`: explicit, from the prefix file, else `<hostname>_<boot time>_unsafe`. */
export function resolveUuidPrefix(o: CheckedWatchOptions): string {
  return o.uuidPrefix ?? callNative(() => native().nativeUuidPrefix(o.uuidPrefixFile))
}
