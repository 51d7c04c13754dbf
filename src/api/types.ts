/**
 * Decoded shapes of the kernel data. Units are in each field's doc; 64-bit kernel
 * counters are `bigint` so that no precision is lost. A field the kernel did not send
 * (older kernel, shorter `tcp_info`) is absent, never zero.
 */

/** `struct inet_diag_sockid` plus the socket cookie. */
export interface SocketId {
  /** Address family: 2 (`AF_INET`) or 10 (`AF_INET6`). */
  family: number
  /** Local address (IPv6 sockets carrying IPv4 show `::ffff:a.b.c.d`). */
  srcIp: string
  /** Local port. */
  srcPort: number
  /** Remote address. */
  dstIp: string
  /** Remote port. */
  dstPort: number
  /** Interface index the socket is bound to (0 = none). */
  interface: number
  /** Kernel socket cookie, unique per socket since boot. */
  cookie: bigint
}

/**
 * `struct tcp_info` (include/uapi/linux/tcp.h, Linux 7.0). Times in µs unless noted,
 * `segments` are packets.
 */
export interface TcpInfo {
  /** TCP state number. */ state: number
  /** Congestion-avoidance state: 0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4 Loss. */ caState: number
  /** Consecutive RTO retransmits. */ retransmits: number
  /** Unanswered probes. */ probes: number
  /** RTO backoff exponent. */ backoff: number
  /** TCPI_OPT_* bits. */ options: number
  /** Send window scale (shift). */ sndWscale: number
  /** Receive window scale (shift). */ rcvWscale: number
  /** Delivery rate sample was application-limited (Linux 4.9+). */ deliveryRateAppLimited?: boolean
  /** TFO client failure reason (Linux 5.5+). */ fastopenClientFail?: number
  /** Retransmission timeout, µs. */ rto: number
  /** Delayed-ACK timeout, µs. */ ato: number
  /** Send MSS, bytes. */ sndMss: number
  /** Receive MSS estimate, bytes. */ rcvMss: number
  /** Packets in flight (LISTEN: accept queue). */ unacked: number
  /** SACKed packets (LISTEN: backlog). */ sacked: number
  /** Lost packets. */ lost: number
  /** Retransmitted packets in flight. */ retrans: number
  /** Always 0. */ fackets: number
  /** ms since last data sent. */ lastDataSent: number
  /** Always 0. */ lastAckSent: number
  /** ms since last data received. */ lastDataRecv: number
  /** ms since last ACK received. */ lastAckRecv: number
  /** Path MTU, bytes. */ pmtu: number
  /** Receive slow-start threshold, bytes. */ rcvSsthresh: number
  /** Smoothed RTT, µs. */ rtt: number
  /** RTT variance, µs. */ rttvar: number
  /** Slow-start threshold, segments. */ sndSsthresh: number
  /** Congestion window, segments. */ sndCwnd: number
  /** Advertised MSS, bytes. */ advmss: number
  /** Reordering degree. */ reordering: number
  /** Receiver RTT estimate, µs. */ rcvRtt: number
  /** Receive space, bytes. */ rcvSpace: number
  /** Retransmitted segments, total. */ totalRetrans: number
  /** Pacing rate, bytes/s (2^64-1 = unlimited). Linux 3.15+. */ pacingRate?: bigint
  /** Max pacing rate, bytes/s. Linux 3.15+. */ maxPacingRate?: bigint
  /** Bytes acknowledged. Linux 4.1+. */ bytesAcked?: bigint
  /** Bytes received. Linux 4.1+. */ bytesReceived?: bigint
  /** Segments sent. Linux 4.2+. */ segsOut?: number
  /** Segments received. Linux 4.2+. */ segsIn?: number
  /** Unsent bytes. Linux 4.6+. */ notsentBytes?: number
  /** Minimum RTT, µs. Linux 4.6+. */ minRtt?: number
  /** Data segments received. Linux 4.6+. */ dataSegsIn?: number
  /** Data segments sent. Linux 4.6+. */ dataSegsOut?: number
  /** Delivery rate, bytes/s. Linux 4.9+. */ deliveryRate?: bigint
  /** Busy sending, µs. Linux 4.10+. */ busyTime?: bigint
  /** Limited by receive window, µs. Linux 4.10+. */ rwndLimited?: bigint
  /** Limited by send buffer, µs. Linux 4.10+. */ sndbufLimited?: bigint
  /** Segments delivered. Linux 4.18+. */ delivered?: number
  /** Segments delivered with ECE. Linux 4.18+. */ deliveredCe?: number
  /** Bytes sent incl. retransmits. Linux 4.19+. */ bytesSent?: bigint
  /** Bytes retransmitted. Linux 4.19+. */ bytesRetrans?: bigint
  /** DSACK duplicates. Linux 4.19+. */ dsackDups?: number
  /** Reordering events. Linux 4.19+. */ reordSeen?: number
  /** Out-of-order packets received. Linux 5.4+. */ rcvOoopack?: number
  /** Peer's window, bytes. Linux 5.4+. */ sndWnd?: number
  /** Local window, bytes. Linux 6.2+. */ rcvWnd?: number
  /** Rehash count. Linux 6.2+. */ rehash?: number
  /** RTO timeouts. Linux 6.7+. */ totalRto?: number
  /** RTO recoveries. Linux 6.7+. */ totalRtoRecoveries?: number
  /** Time in RTO recovery, ms. Linux 6.7+. */ totalRtoTime?: number
  /** Segments received with CE. Linux 6.18+. */ receivedCe?: number
  /** AccECN bytes delivered ECT(1) (u32, wraps). Linux 6.18+. */ deliveredE1Bytes?: number
  /** AccECN bytes delivered ECT(0). Linux 6.18+. */ deliveredE0Bytes?: number
  /** AccECN bytes delivered CE. Linux 6.18+. */ deliveredCeBytes?: number
  /** AccECN bytes received ECT(1). Linux 6.18+. */ receivedE1Bytes?: number
  /** AccECN bytes received ECT(0). Linux 6.18+. */ receivedE0Bytes?: number
  /** AccECN bytes received CE. Linux 6.18+. */ receivedCeBytes?: number
  /** AccECN failure bits. Linux 6.18+. */ accecnFailMode?: number
  /** AccECN option seen state. Linux 6.18+. */ accecnOptSeen?: number
  /** ECN mode. Linux 7.0+. */ ecnMode?: number
  /** tcpi_options2 bits. Linux 7.0+. */ options2?: number
}

/** `struct inet_diag_meminfo`, bytes. */
export interface MemInfo { rmem: number; wmem: number; fmem: number; tmem: number }

/** `SK_MEMINFO_*` array (bytes; `drops` is a count). Later entries absent on old kernels. */
export interface SkMemInfo {
  rmemAlloc: number; rcvbuf: number; wmemAlloc: number; sndbuf: number; fwdAlloc: number
  wmemQueued: number; optmem: number; backlog?: number; drops?: number
}

/** `struct tcp_bbr_info`: `bw` in bytes/s, `minRtt` µs, gains in 1/256 units. */
export interface BbrInfo { bw: bigint; minRtt: number; pacingGain: number; cwndGain: number }
/** `struct tcpvegas_info`: times in µs. */
export interface VegasInfo { enabled: number; rttCount: number; rtt: number; minRtt: number }
/** `struct tcp_dctcp_info`: `alpha` fixed point (1024 = 1.0), byte counts. */
export interface DctcpInfo { enabled: number; ceState: number; alpha: number; abEcn: number; abTot: number }

/** Everything decoded from one reply. */
export interface DecodedConnection {
  id: SocketId
  state: number
  /** State as `ss` prints it (`ESTAB`, `LISTEN`, …). */
  stateName: string
  /** `idiag_timer`: 0 off, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 probe. */
  timer: number
  timerRetransmits: number
  /** ms until the timer fires. */
  expires: number
  /** Bytes unread (LISTEN: accept backlog). */
  rqueue: number
  /** Bytes unacknowledged (LISTEN: max backlog). */
  wqueue: number
  /**
   * Owner uid (`idiag_uid`). For a closed connection, the last value the dumps saw (the
   * kernel's destroy message says 0); absent for a connection no poll saw.
   */
  uid?: number
  /** Socket inode (`idiag_inode`; 0 once orphaned). Kept and absent like {@link uid}. */
  inode?: number
  tcpInfo?: TcpInfo
  memInfo?: MemInfo
  skMemInfo?: SkMemInfo
  /** Congestion control name. */
  congestion?: string
  tos?: number
  tclass?: number
  /** Bits: 1 = receive side shut down, 2 = send side. */
  shutdown?: number
  vegasInfo?: VegasInfo
  dctcpInfo?: DctcpInfo
  bbrInfo?: BbrInfo
  protocol?: number
  v6Only?: boolean
  mark?: number
  classId?: number
  cgroupId?: bigint
  sockOpt?: Record<string, boolean>
  /** Attributes this version does not decode, raw. */
  otherAttributes?: { type: number; data: Buffer }[]
}
