/**
 * Errors of the tcpinfo API. Match on `code`, never on the message text.
 */
import { ARCHIVE_ERROR_CODES, CORE_ERROR_CODES, RTT_ERROR_CODES, TS_ERROR_CODES, WARNING_CODES } from './uapi.js'

/** Every error code: the core's, the TypeScript side's, and the poll warning codes. */
export const ERROR_CODES = [...new Set([...CORE_ERROR_CODES, ...ARCHIVE_ERROR_CODES, ...RTT_ERROR_CODES, ...TS_ERROR_CODES, ...WARNING_CODES])] as readonly TcpinfoErrorCode[]

/**
 * Stable error codes. `ERR_CONFIG`: a bad option (its name is in the message);
 * `ERR_SOCKET`/`ERR_KERNEL`: netlink failed; `ERR_NETNS`: a namespace cannot be entered;
 * `ERR_THREAD`: a thread could not be started; `ERR_INTERNAL`: a bug in tcpinfo;
 * `ERR_CLOSED`: used after close; `ERR_UNSUPPORTED_PLATFORM`, `ERR_NATIVE_MISSING`: no
 * addon for this machine. The other codes appear as poll warnings.
 */
export type TcpinfoErrorCode =
  | (typeof CORE_ERROR_CODES)[number]
  | (typeof ARCHIVE_ERROR_CODES)[number]
  | (typeof RTT_ERROR_CODES)[number]
  | (typeof TS_ERROR_CODES)[number]
  | (typeof WARNING_CODES)[number]

/** An error with a stable {@link TcpinfoErrorCode}. */
export class TcpinfoError extends Error {
  readonly code: TcpinfoErrorCode

  constructor(code: TcpinfoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TcpinfoError'
    this.code = code
  }
}
