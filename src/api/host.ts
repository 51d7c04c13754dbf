/** Facts about the host the library's users and the CLI need. */
import { native } from '../native.js'

/**
 * Whether the reader of the pipe or socket `fd` writes to has gone, found without
 * writing (`poll(2)`: `POLLERR`/`POLLHUP`). False for files and terminals.
 *
 * @throws {TcpinfoError} `ERR_NATIVE_MISSING` or `ERR_UNSUPPORTED_PLATFORM` without the addon.
 */
export function outputClosed(fd: number): boolean {
  return native().nativeOutputClosed(fd)
}
