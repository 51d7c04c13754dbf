//! Shared pieces of the tcpinfo benchmarks.
//!
//! The binaries in `src/bin/` are thin: `farm` (the socket workload), `drain` (the bare
//! `NETLINK_SOCK_DIAG` dump loop, the physical limit) and `ss_contender` (`ss -tinmeo`, the
//! everyday peer). What they share lives here: a tiny flag parser ([`cli`]), the common JSON
//! report of a polling run ([`report`]), thin libc wrappers ([`sys`]) and the farm itself
//! ([`farm`]). The baselines (`drain`, `ss_contender`) deliberately use nothing from `tcpinfo-core`:
//! they must not share code with the thing they measure. Only the tcpinfo contenders
//! (`pipeline`, `poll`) link the core.

pub mod cli;
pub mod farm;
pub mod report;
pub mod sys;
