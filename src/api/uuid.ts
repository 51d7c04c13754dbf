/** M-Lab connection UUID prefixes. */
import { callNative, native } from '../native.js'
import type { PollOptions } from './options.js'

/** The UUID prefix for `o`: explicit, from the prefix file, else `<hostname>_<boot time>_unsafe`. */
export function resolveUuidPrefix(o: PollOptions): string {
  return o.uuidPrefix ?? callNative(() => native().nativeUuidPrefix(o.uuidPrefixFile))
}
