/**
 * Errors of the tcpinfo API. Match on `code`, never on the message text.
 */

/** Stable error codes. */
export type TcpinfoErrorCode =
  | 'ERR_SOCKET'
  | 'ERR_KERNEL'
  | 'ERR_MALFORMED'
  | 'ERR_DUMP_INTERRUPTED'
  | 'ERR_CONFIG'
  | 'ERR_CLOSED'
  | 'ERR_NETNS'
  | 'ERR_EVENTS_LOST'
  | 'ERR_UNSUPPORTED_PLATFORM'
  | 'ERR_NATIVE_MISSING'
  | 'ERR_INTERNAL'
  | 'ERR_PERMISSION'
  | 'ERR_IO'
  | 'ERR_CAPTURE_FILE'

/** An error with a stable {@link TcpinfoErrorCode}. */
export class TcpinfoError extends Error {
  readonly code: TcpinfoErrorCode

  constructor(code: TcpinfoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TcpinfoError'
    this.code = code
  }
}
