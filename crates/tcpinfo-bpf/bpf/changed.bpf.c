// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * tcpinfo's BPF poll mode: an `iter/tcp` program that fingerprints every TCP socket of
 * the iterating task's network namespace where it lives, keeps the last fingerprint in
 * a hash map keyed by socket cookie, and writes out only the sockets that are new or
 * changed. (Not socket local storage: the kernel charges it to the socket's optmem,
 * which inet_diag reports in SKMEMINFO, so records would differ from netlink mode's.)
 * User space deletes a socket's entry when its destroy event arrives.
 *
 * The fingerprint folds the *sources* of everything tcpinfo's change rule counts
 * (crates/tcpinfo-core/src/diff/fingerprint.rs): the TCP state, every field of
 * `struct tcp_info` that tcp_get_info() (net/ipv4/tcp.c) fills except the four
 * `tcpi_last_*` elapsed times (unless FP_ELAPSED), and the sources of the non-memory
 * attributes of inet_diag (CONG, VEGAS/DCTCP/BBR info, TOS, TCLASS, SHUTDOWN, MARK,
 * CLASS_ID, CGROUP_ID, SKV6ONLY, SOCKOPT, ULP). It is a superset: a socket reported here
 * is fetched with an exact inet_diag request and compared by the user-space fingerprint,
 * so a false positive costs one lookup, never a wrong record. A field missing here
 * would lose changes: see docs/internals/bpf/design.md for the table of sources.
 *
 * vmlinux.h is generated at build time from the build machine's BTF; every struct
 * access is relocated (CO-RE) against the running kernel's BTF at load time.
 */
#include "vmlinux.h"

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define INLINE static inline __attribute__((always_inline))

/* Helpers, by their number in the kernel's `enum bpf_func_id` (from vmlinux.h). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)BPF_FUNC_seq_write;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)BPF_FUNC_map_update_elem;
static __u64 (*bpf_get_socket_cookie)(void *sk) = (void *)BPF_FUNC_get_socket_cookie;
static struct tcp_sock *(*bpf_skc_to_tcp_sock)(void *sk) = (void *)BPF_FUNC_skc_to_tcp_sock;
static struct tcp_timewait_sock *(*bpf_skc_to_tcp_timewait_sock)(void *sk) = (void *)BPF_FUNC_skc_to_tcp_timewait_sock;
static __u64 (*bpf_jiffies64)(void) = (void *)BPF_FUNC_jiffies64;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)BPF_FUNC_ktime_get_ns;

/* CO-RE field information (clang's __builtin_preserve_field_info kinds). */
#define FI_BYTE_OFFSET 0
#define FI_EXISTS 2
#define FI_BYTE_SIZE 1
#define FI_SIGNED 3
#define FI_LSHIFT 4
#define FI_RSHIFT 5
#define HAS(field) __builtin_preserve_field_info(field, FI_EXISTS)

/* Reads a bitfield (or any integer field) of a BTF pointer by its relocated storage unit:
 * load the unit, shift the field to the top, shift it back down. */
#define BITS(s, field)                                                                   \
	({                                                                               \
		const void *p_ = (const void *)(s) +                                     \
				 __builtin_preserve_field_info((s)->field, FI_BYTE_OFFSET); \
		__u64 v_ = 0;                                                            \
		asm volatile("" : "+r"(p_));                                             \
		switch (__builtin_preserve_field_info((s)->field, FI_BYTE_SIZE)) {       \
		case 1: v_ = *(const __u8 *)p_; break;                                   \
		case 2: v_ = *(const __u16 *)p_; break;                                  \
		case 4: v_ = *(const __u32 *)p_; break;                                  \
		case 8: v_ = *(const __u64 *)p_; break;                                  \
		}                                                                        \
		v_ <<= __builtin_preserve_field_info((s)->field, FI_LSHIFT);             \
		v_ >>= __builtin_preserve_field_info((s)->field, FI_RSHIFT);             \
		v_;                                                                      \
	})

#define AF_INET 2
#define AF_INET6 10

/* Record kinds (byte 8 of every record). Layout mirrored in src/record.rs. */
#define KIND_CHANGED 1 /* new or changed full socket: struct rec_full */
#define KIND_SEEN 2    /* unchanged, written only in EMIT_ALL walks: struct rec_hdr */
#define KIND_MINI 3    /* timewait or request minisocket (not fingerprinted): struct rec_full */
#define KIND_END 4     /* the walk's last record: struct rec_end */
/* rec_hdr.pad of KIND_CHANGED records and dirty entries: a chrono or RTO recovery runs */
#define EV_STICKY 1

/* ctl.flags */
#define EMIT_ALL 1
/* ctl.fp_flags: the change rule */
#define FP_STATE_ONLY 1
#define FP_MEMORY 2
#define FP_ELAPSED 4

#define END_MAGIC 0x7463706966656e64ULL /* "tcpifend" */

struct rec_hdr {
	__u64 cookie;
	__u8 kind;
	__u8 family;
	__u8 state;
	__u8 pad;
	__u32 ifindex;
};

struct rec_full {
	struct rec_hdr h;
	__be16 sport;
	__be16 dport;
	__u32 pad;
	__u32 src[4];
	__u32 dst[4];
};

struct rec_end {
	__u64 magic;
	__u8 kind;
	__u8 pad[7];
	__u64 walked;
	__u64 emitted;
};

/* The per-walk switches and counters, written by user space before each walk. */
struct ctl {
	__u32 flags;
	__u32 states;
	__u32 families; /* bit 0: AF_INET, bit 1: AF_INET6 */
	__u32 fp_flags;
	__u64 walked;
	__u64 emitted;
	__u32 netns;  /* event mode: the poller's network namespace (inode number) */
	__u32 events; /* nonzero: the event programs mark dirty sockets */
	__u32 gen;    /* bumped by user space before and after each drain of `dirty` */
	__u32 pad2;
};

/* cookie -> last fingerprint, allocated on demand. 256 Ki entries: a smaller bucket array
 * stays in cache (a 1 Mi map cost ~340 ns per lookup); sockets beyond it are reported on
 * every walk, which is safe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 18);
	__type(key, __u64);
	__type(value, __u64);
} fp_store SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ctl);
} ctl SEC(".maps");

#define K 0x517cc1b727220a95ULL

INLINE __u64 fold(__u64 h, __u64 w)
{
	return (((h << 5) | (h >> 59)) ^ w) * K;
}

#define F(x) (h = fold(h, (__u64)(x)))

INLINE __u64 fingerprint(struct tcp_sock *tp, __u8 state, __u32 flags)
{
	struct inet_connection_sock *icsk = &tp->inet_conn;
	struct inet_sock *inet = &icsk->icsk_inet;
	struct sock *sk = &inet->sk;
	__u64 h = fold(0, state);
	__u32 now = (__u32)bpf_jiffies64();

	if (flags & FP_STATE_ONLY)
		return h | 1;

	/* tcp_info, in tcp_get_info()'s order. */
	F(sk->sk_pacing_rate);
	F(sk->sk_max_pacing_rate);
	F(tp->reordering);
	F(tp->snd_cwnd);
	F(sk->sk_ack_backlog);     /* LISTEN: tcpi_unacked */
	F(sk->sk_max_ack_backlog); /* LISTEN: tcpi_sacked */
	F(BITS(icsk, icsk_ca_state));
	F(icsk->icsk_retransmits);
	F(icsk->icsk_probes_out);
	F(icsk->icsk_backoff);
	F(BITS(tp, rx_opt.tstamp_ok));
	F(BITS(tp, rx_opt.sack_ok));
	F(BITS(tp, rx_opt.wscale_ok));
	F(BITS(tp, rx_opt.snd_wscale));
	F(BITS(tp, rx_opt.rcv_wscale));
	F(tp->ecn_flags);
	F(BITS(tp, syn_data_acked));
	if (HAS(tp->tcp_usec_ts))
		F(BITS(tp, tcp_usec_ts));
	if (HAS(tp->syn_fastopen_child))
		F(BITS(tp, syn_fastopen_child));
	F(icsk->icsk_rto);
	F(BITS(icsk, icsk_ack.ato));
	if (HAS(icsk->icsk_delack_max))
		F(icsk->icsk_delack_max);
	F(tp->mss_cache);
	F(icsk->icsk_ack.rcv_mss);
	F(tp->packets_out);
	F(tp->sacked_out);
	F(tp->lost_out);
	F(tp->retrans_out);
	if (flags & FP_ELAPSED) {
		F(now - tp->lsndtime);
		F(now - icsk->icsk_ack.lrcvtime);
		F(now - tp->rcv_tstamp);
	}
	F(icsk->icsk_pmtu_cookie);
	F(tp->rcv_ssthresh);
	F(tp->srtt_us);
	F(tp->mdev_us);
	F(tp->snd_ssthresh);
	F(tp->advmss);
	F(tp->rcv_rtt_est.rtt_us);
	F(tp->rcvq_space.space);
	F(tp->total_retrans);
	F(tp->bytes_acked);
	F(tp->bytes_received);
	F(tp->write_seq - tp->snd_nxt); /* tcpi_notsent_bytes */
	/* tcpi_busy_time, rwnd_limited, sndbuf_limited: the running chrono grows per jiffy */
	F(tp->chrono_type);
	F(tp->chrono_stat[0]);
	F(tp->chrono_stat[1]);
	F(tp->chrono_stat[2]);
	if (tp->chrono_type)
		F(now - tp->chrono_start);
	F(tp->segs_out);
	F(tp->segs_in);
	F(tp->data_segs_in);
	F(tp->rtt_min.s[0].v); /* tcp_min_rtt() */
	F(tp->data_segs_out);
	F(BITS(tp, rate_app_limited));
	F(tp->rate_delivered); /* tcpi_delivery_rate = rate_delivered * mss / interval */
	F(tp->rate_interval_us);
	F(tp->delivered);
	F(tp->delivered_ce);
	F(tp->bytes_sent);
	F(tp->bytes_retrans);
	F(tp->dsack_dups);
	F(tp->reord_seen);
	F(tp->rcv_ooopack);
	F(tp->snd_wnd);
	F(tp->rcv_wnd);
	if (HAS(tp->plb_rehash))
		F(tp->plb_rehash);
	if (HAS(tp->timeout_rehash))
		F(tp->timeout_rehash);
	F(BITS(tp, fastopen_client_fail));
	if (HAS(tp->total_rto)) {
		F(tp->total_rto);
		F(tp->total_rto_recoveries);
		F(tp->total_rto_time);
		/* a running RTO recovery adds tcp_clock_ms() - rto_stamp */
		if (tp->rto_stamp)
			F(bpf_ktime_get_ns() / 1000000 - tp->rto_stamp);
	}
	if (HAS(tp->received_ce)) {
		F(tp->received_ce);
		F(BITS(tp, accecn_fail_mode));
		F(BITS(tp, saw_accecn_opt));
		F(tp->delivered_ecn_bytes[0]);
		F(tp->delivered_ecn_bytes[1]);
		F(tp->delivered_ecn_bytes[2]);
		F(tp->received_ecn_bytes[0]);
		F(tp->received_ecn_bytes[1]);
		F(tp->received_ecn_bytes[2]);
	}

	/* INET_DIAG_CONG (the ops' name) and VEGAS/DCTCP/BBR info (the ops' private area). */
	/* Which congestion control (INET_DIAG_CONG names it): its ops' hash key. */
	F(icsk->icsk_ca_ops->key);
	/* INET_DIAG_ULP_INFO: whether a ULP is attached; its state is not folded. */
	F(icsk->icsk_ulp_ops != 0);
	/* INET_DIAG_CGROUP_ID: the socket's cgroup id */
	F(sk->sk_cgrp_data.cgroup ? sk->sk_cgrp_data.cgroup->kn->id : 0);
	for (int i = 0; i < 13; i++)
		F(icsk->icsk_ca_priv[i]);
	/* INET_DIAG_SHUTDOWN, MARK, CLASS_ID (classid, else priority), CGROUP_ID */
	F(sk->sk_shutdown);
	F(sk->sk_mark);
	F(sk->sk_priority);
	if (HAS(sk->sk_cgrp_data.classid))
		F(sk->sk_cgrp_data.classid);
	/* INET_DIAG_TOS, TCLASS, SKV6ONLY, SOCKOPT */
	F(inet->tos);
	if (inet->pinet6)
		F(inet->pinet6->tclass);
	F(BITS(&sk->__sk_common, skc_ipv6only));
	if (HAS(inet->inet_flags))
		F(inet->inet_flags);
	/* INET_DIAG_MEMINFO / SKMEMINFO, when the change rule counts memory */
	if (flags & FP_MEMORY) {
		F(sk->sk_backlog.rmem_alloc.counter);
		F(sk->sk_rcvbuf);
		F(sk->sk_wmem_queued);
		F(sk->sk_forward_alloc);
		F(sk->sk_wmem_alloc.refs.counter);
		F(sk->sk_sndbuf);
		F(sk->sk_omem_alloc.counter);
		F(sk->sk_backlog.len);
		F(sk->sk_drops.counter);
	}
	return h | 1; /* never 0: 0 is "no fingerprint yet" */
}

INLINE void fill_id(struct rec_full *r, struct sock_common *skc, __u8 kind, __u8 state)
{
	r->h.kind = kind;
	r->h.family = skc->skc_family;
	r->h.state = state;
	r->h.ifindex = skc->skc_bound_dev_if;
	r->sport = __builtin_bswap16(skc->skc_num);
	r->dport = skc->skc_dport;
	if (r->h.family == AF_INET) {
		r->src[0] = skc->skc_rcv_saddr;
		r->dst[0] = skc->skc_daddr;
	} else {
		__builtin_memcpy(r->src, &skc->skc_v6_rcv_saddr, 16);
		__builtin_memcpy(r->dst, &skc->skc_v6_daddr, 16);
	}
}

SEC("iter/tcp")
int changed_sockets(struct bpf_iter__tcp *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct sock_common *skc = ctx->sk_common;
	struct rec_full r = {};
	__u32 zero = 0;
	struct ctl *c = bpf_map_lookup_elem(&ctl, &zero);

	if (!c)
		return 0;
	if (!skc) {
		struct rec_end e = {};
		e.magic = END_MAGIC;
		e.kind = KIND_END;
		e.walked = c->walked;
		e.emitted = c->emitted;
		if (bpf_seq_write(seq, &e, sizeof(e)) == 0) {
			c->walked = 0;
			c->emitted = 0;
		}
		return 0;
	}
	__u16 family = skc->skc_family;
	__u32 fam_bit = family == AF_INET ? 1 : family == AF_INET6 ? 2 : 0;
	if (!(c->families & fam_bit))
		return 0;
	__u8 state = skc->skc_state;
	__u8 kind = KIND_CHANGED;
	if (state == TCP_TIME_WAIT) {
		struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
		if (!tw)
			return 0;
		state = tw->tw_sk.tw_substate;
		kind = KIND_MINI;
	} else if (state == TCP_NEW_SYN_RECV) {
		state = TCP_SYN_RECV;
		kind = KIND_MINI;
	}
	if (state > 31 || !(c->states & (1U << state)))
		return 0;
	c->walked++;
	r.h.cookie = bpf_get_socket_cookie(skc);
	if (kind == KIND_MINI) {
		fill_id(&r, skc, kind, state);
		if (bpf_seq_write(seq, &r, sizeof(r)) == 0)
			c->emitted++;
		return 0;
	}
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	__u64 fp = fingerprint(tp, state, c->fp_flags);
	__u64 *old = bpf_map_lookup_elem(&fp_store, &r.h.cookie);
	if (old && *old == fp) {
		if (c->flags & EMIT_ALL) {
			r.h.kind = KIND_SEEN;
			r.h.family = family;
			r.h.state = state;
			bpf_seq_write(seq, &r.h, sizeof(r.h));
		}
		return 0;
	}
	fill_id(&r, skc, kind, state);
	if (tp->chrono_type || (HAS(tp->rto_stamp) && tp->rto_stamp))
		r.h.pad = EV_STICKY;
	/* Remember the fingerprint only once the record is out: a record that did not fit
	 * is discarded by the seq_file and this socket is shown again. */
	if (bpf_seq_write(seq, &r, sizeof(r)) == 0) {
		c->emitted++;
		if (old)
			*old = fp;
		else /* a full map: the socket is reported on every walk, which is safe */
			bpf_map_update_elem(&fp_store, &r.h.cookie, &fp, BPF_ANY);
	}
	return 0;
}


/* ---------------------------------------------------------------------------------------
 * Event mode: instead of walking every socket each poll, BTF tracepoints (tp_btf) on the
 * TCP paths that change what the fingerprint folds mark the socket dirty in `dirty`,
 * keyed by cookie, with its id for an exact inet_diag request. User space drains the map
 * each poll (BPF_MAP_LOOKUP_AND_DELETE_BATCH) and fetches only those sockets. (fentry/fexit
 * would mark after each change, but kernels may refuse them: this one does, EPERM.)
 * Several tracepoints fire *before* the change they announce (tcp_probe at the start of
 * tcp_rcv_established, inet_sock_set_state before the store, sys_enter before the
 * syscall): user space therefore fetches a dirty socket once more at the next poll.
 *
 *   net_dev_queue       every packet handed to a device: skb->sk is the TCP socket that
 *                       sent it (data, ACKs incl. delayed ACKs, retransmissions, keepalive
 *                       and window probes, SYN/SYN-ACK of request sockets, resets)
 *   tcp_probe           receive processing of an ESTABLISHED socket
 *   inet_sock_set_state every state change (connect, accept's child, close, listen)
 *   tcp_retransmit_skb  a retransmission, also one the qdisc refused
 *   tcp_cong_state_set  ca_state changes (recovery, loss)
 *   tcp_rcv_space_adjust, tcp_sendmsg_locked
 *                       application reads and writes
 *   tcp_retransmit_synack  a request socket's SYN-ACK again
 *   sys_enter           setsockopt, shutdown, listen, accept (x86-64: the fd's socket)
 *
 * A full map counts an overflow in `ev_stats`: user space then walks. `rec_full.h.pad`
 * carries EV_STICKY: the socket had a running chrono (busy / rwnd / sndbuf limited time
 * grows every jiffy) or RTO recovery (total_rto_time grows) at the event: user space
 * fetches it every poll while its records show data in flight or queued.
 * --------------------------------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, __u64);
	__type(value, struct rec_full);
} dirty SEC(".maps");

/* Per CPU, the last sockets marked (a slot per cookie & 63): a mark of the same socket (same port and state) in
 * the same jiffy and drain generation is skipped (its entry is in `dirty`, or taken by a
 * drain still under way, whose fetch comes after this mark; the entry's mark time is at
 * most one jiffy old). One packet fires several tracepoints on one socket. */
struct ev_last {
	__u64 cookie;
	__u64 jiffies;
	__u32 gen;
	__u16 num;
	__u8 state;
	__u8 pad;
};

#define EV_LAST_SLOTS 64 /* direct-mapped by cookie: both ends of a loopback connection */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EV_LAST_SLOTS);
	__type(key, __u32);
	__type(value, struct ev_last);
} ev_last SEC(".maps");

/* Whether this mark repeats the CPU's last one; else remembers it (after the store). */
INLINE struct ev_last *repeat(struct ctl *c, __u64 cookie, __u16 num, __u8 state, __u64 j,
			      int *hit)
{
	__u32 slot = (__u32)cookie & (EV_LAST_SLOTS - 1);
	struct ev_last *e = bpf_map_lookup_elem(&ev_last, &slot);
	*hit = e && e->cookie == cookie && e->jiffies == j && e->gen == c->gen &&
	       e->num == num && e->state == state;
	return e;
}

INLINE void remember(struct ev_last *e, struct ctl *c, __u64 cookie, __u16 num, __u8 state,
		     __u64 j)
{
	if (!e)
		return;
	e->cookie = cookie;
	e->jiffies = j;
	e->gen = c->gen;
	e->num = num;
	e->state = state;
}

/* [0]: marks refused because `dirty` was full; [1]: marks (new entries) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} ev_stats SEC(".maps");


static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)BPF_FUNC_probe_read_kernel;
#define OFF(type, field) __builtin_preserve_field_info(((type *)0)->field, FI_BYTE_OFFSET)
#define RD(dst, addr) bpf_probe_read_kernel(&(dst), sizeof(dst), (const void *)(addr))

INLINE void count(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&ev_stats, &i);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Stores `r` (cookie, kind, state and id filled) unless the same entry is there; either
 * way the entry's `pad` word holds the time of this mark (µs, CLOCK_MONOTONIC, low 32
 * bits): user space fetches again at the next poll what was marked just before its
 * drain (a tracepoint that fires before its change may not have seen it finish). */
INLINE int store(struct rec_full *r)
{
	__u32 now = (__u32)(bpf_ktime_get_ns() / 1000);
	struct rec_full *old = bpf_map_lookup_elem(&dirty, &r->h.cookie);
	if (old) {
		const __u64 *a = (const __u64 *)old, *b = (const __u64 *)r;
		__u64 d = (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
			  (a[5] ^ b[5]) | (a[6] ^ b[6]);
		d |= (old->sport ^ r->sport) | (old->dport ^ r->dport);
		if (!d) {
			old->pad = now;
			return 0;
		}
		/* A closing socket loses its port (inet_put_port) after the state change
		 * marked it: keep the tuple, which also finds its timewait successor. */
		if (r->sport == 0 && old->sport != 0) {
			old->pad = now;
			return 0;
		}
	}
	r->pad = now;
	/* new, or its id/state/flags changed (a connect that got its port): replace whole */
	if (bpf_map_update_elem(&dirty, &r->h.cookie, r, BPF_ANY) == 0) {
		if (!old)
			count(1);
	} else {
		count(0);
	}
	return 0;
}

/* The namespace and family filter of every mark. */
INLINE struct ctl *accept_ev(struct sock_common *skc, __u16 family)
{
	__u32 zero = 0;
	struct ctl *c;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	c = bpf_map_lookup_elem(&ctl, &zero);
	if (!c || !c->events)
		return 0;
	if (!(c->families & (family == AF_INET ? 1 : 2)))
		return 0;
	if (skc->skc_net.net->ns.inum != c->netns)
		return 0;
	return c;
}

/* Marks the socket `skc` (any kind: full, request, timewait). `new_state` >= 0: the
 * state it is moving to (inet_sock_set_state fires before the store). */
INLINE int mark(struct sock_common *skc, int new_state)
{
	struct rec_full r = {};
	__u8 kind = KIND_CHANGED;
	__u8 state;
	struct ctl *c;

	if (!skc)
		return 0;
	c = accept_ev(skc, skc->skc_family);
	if (!c)
		return 0;
	state = skc->skc_state;
	if (state == TCP_NEW_SYN_RECV) {
		kind = KIND_MINI;
		state = TCP_SYN_RECV;
	} else if (state == TCP_TIME_WAIT) {
		struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
		if (!tw)
			return 0;
		kind = KIND_MINI;
		state = tw->tw_sk.tw_substate;
	} else {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
		if (!tp || BITS(&tp->inet_conn.icsk_inet.sk, sk_type) != SOCK_STREAM)
			return 0;
		if (new_state >= 0)
			state = (__u8)new_state;
		/* (no EV_STICKY here: it would flap between marks of one socket, turning
		 * each into a map update; user space decides from the fetched record) */
	}
	r.h.cookie = bpf_get_socket_cookie(skc);
	__u64 j = bpf_jiffies64();
	__u16 num = skc->skc_num;
	int hit;
	struct ev_last *e = repeat(c, r.h.cookie, num, state, j, &hit);
	if (hit)
		return 0;
	fill_id(&r, skc, kind, state);
	store(&r);
	remember(e, c, r.h.cookie, num, state, j);
	return 0;
}

/* Marks the socket of a transmitted skb. `skb->sk` is only RCU-protected for the
 * verifier, so the socket helpers refuse it: its fields are loaded directly instead
 * (the cookie too: every TCP socket gets one at its first state change, marked there
 * with bpf_get_socket_cookie, or when inet_diag reports it). Request sockets (SYN-ACKs)
 * are marked as such; timewait ACKs leave from the per-netns control socket. */
INLINE int mark_tx(struct sock *sk)
{
	struct sock_common *skc = &sk->__sk_common;
	struct rec_full r = {};
	__u8 kind = KIND_CHANGED, state;
	struct ctl *c = accept_ev(skc, skc->skc_family);

	if (!c)
		return 0;
	state = skc->skc_state;
	if (state == TCP_NEW_SYN_RECV) {
		kind = KIND_MINI;
		state = TCP_SYN_RECV;
	} else if (state == TCP_TIME_WAIT) {
		return 0;
	} else if (BITS(sk, sk_protocol) != IPPROTO_TCP || BITS(sk, sk_type) != SOCK_STREAM) {
		return 0;
	}
	r.h.cookie = skc->skc_cookie.counter;
	if (!r.h.cookie)
		return 0;
	__u64 j = bpf_jiffies64();
	__u16 num = skc->skc_num;
	int hit;
	struct ev_last *e = repeat(c, r.h.cookie, num, state, j, &hit);
	if (hit)
		return 0;
	fill_id(&r, skc, kind, state);
	store(&r);
	remember(e, c, r.h.cookie, num, state, j);
	return 0;
}

/* The same by address, for the fd table walk of sys_enter (not a BTF-typed path). */
INLINE int mark_addr(__u64 sk)
{
	struct sock_common skc;
	struct rec_full r = {};
	__u64 cookie = 0, net = 0;
	__u32 inum = 0, zero = 0;
	__u16 proto = 0, type = 0;

	if (RD(skc, sk))
		return 0;
	if (skc.skc_family != AF_INET && skc.skc_family != AF_INET6)
		return 0;
	if (skc.skc_state == TCP_NEW_SYN_RECV || skc.skc_state == TCP_TIME_WAIT)
		return 0;
	struct ctl *c = bpf_map_lookup_elem(&ctl, &zero);
	if (!c || !c->events || !(c->families & (skc.skc_family == AF_INET ? 1 : 2)))
		return 0;
	if (RD(proto, sk + OFF(struct sock, sk_protocol)) || proto != IPPROTO_TCP)
		return 0;
	if (RD(type, sk + OFF(struct sock, sk_type)) || type != SOCK_STREAM)
		return 0;
	if (RD(cookie, sk + OFF(struct sock_common, skc_cookie)) || !cookie)
		return 0;
	if (RD(net, sk + OFF(struct sock_common, skc_net.net)) || !net)
		return 0;
	if (RD(inum, net + OFF(struct net, ns.inum)) || inum != c->netns)
		return 0;
	r.h.cookie = cookie;
	fill_id(&r, &skc, KIND_CHANGED, skc.skc_state);
	return store(&r);
}

SEC("tp_btf/net_dev_queue")
int ev_net_dev_queue(unsigned long long *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	struct sock *sk = skb->sk;
	if (!sk)
		return 0;
	return mark_tx(sk);
}

#define ON_SOCK(tp)                                                                      \
	SEC("tp_btf/" #tp)                                                               \
	int ev_##tp(unsigned long long *ctx)                                             \
	{                                                                                \
		struct sock *sk = (struct sock *)ctx[0];                                 \
		return mark(&sk->__sk_common, -1);                                       \
	}

ON_SOCK(tcp_probe)
ON_SOCK(tcp_retransmit_skb)
ON_SOCK(tcp_cong_state_set)
/* application reads: every tcp_recvmsg (and splice read) adjusts the receive space */
ON_SOCK(tcp_rcv_space_adjust)
/* application writes: each new skb of tcp_sendmsg (appends to a queued one leave the
 * socket with data queued, which user space then fetches every poll) */
ON_SOCK(tcp_sendmsg_locked)

SEC("tp_btf/inet_sock_set_state")
int ev_inet_sock_set_state(unsigned long long *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int new_state = (int)ctx[2];
	if (BITS(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	return mark(&sk->__sk_common, new_state);
}

SEC("tp_btf/tcp_retransmit_synack")
int ev_tcp_retransmit_synack(unsigned long long *ctx)
{
	struct request_sock *req = (struct request_sock *)ctx[1];
	return mark(&req->__req_common, -1);
}

#if defined(__TARGET_ARCH_x86)
static struct task_struct *(*bpf_get_current_task_btf)(void) = (void *)BPF_FUNC_get_current_task_btf;
#define NR_ACCEPT 43
#define NR_SHUTDOWN 48
#define NR_LISTEN 50
#define NR_SETSOCKOPT 54
#define NR_ACCEPT4 288
#define S_IFMT 00170000
#define S_IFSOCK 0140000
/* Options, shutdown, listen and accept change a socket without a packet or a TCP
 * tracepoint: mark the socket of the syscall's fd (read by address: the fd table is not
 * a BTF-typed path). The fetch after the syscall sees the change (the mark comes first:
 * user space fetches again at the next poll). */
SEC("tp_btf/sys_enter")
int ev_sys_enter(unsigned long long *ctx)
{
	long id = (long)ctx[1];
	if (id != NR_SETSOCKOPT && id != NR_SHUTDOWN && id != NR_LISTEN && id != NR_ACCEPT &&
	    id != NR_ACCEPT4)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	unsigned long fd = regs->di;
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	if (fd >= fdt->max_fds)
		return 0;
	__u64 files = (__u64)fdt->fd, file = 0, inode = 0, sock = 0, sk = 0;
	__u16 mode = 0;
	if (RD(file, files + fd * 8) || !file)
		return 0;
	if (RD(inode, file + OFF(struct file, f_inode)) || !inode)
		return 0;
	if (RD(mode, inode + OFF(struct inode, i_mode)) || (mode & S_IFMT) != S_IFSOCK)
		return 0;
	if (RD(sock, file + OFF(struct file, private_data)) || !sock)
		return 0;
	if (RD(sk, sock + OFF(struct socket, sk)) || !sk)
		return 0;
	return mark_addr(sk);
}
#endif

char LICENSE[] SEC("license") = "GPL";
