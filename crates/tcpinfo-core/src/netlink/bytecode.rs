//! Compiles a [`Filter`] into an `INET_DIAG_REQ_BYTECODE` program, so that the kernel skips
//! excluded sockets before filling their replies (`tcp_get_info` and the attributes are the
//! dump's main cost). Layout and audit rules: `include/uapi/linux/inet_diag.h`
//! (`struct inet_diag_bc_op`, `struct inet_diag_hostcond`) and `inet_diag_bc_audit` /
//! `inet_diag_bc_run` in `net/ipv4/inet_diag.c`; summarised in KERNEL-UAPI.md §6.
//!
//! Why by hand: `netlink-packet-sock-diag` has no bytecode builder.
//!
//! The program is a chain of exclusion tests, each `[test ops][JMP]`: a test that holds
//! falls through (`yes`) to its JMP, which rejects (jumps past the end); a test that fails
//! skips (`no`) to the next test; running off the end accepts. Every op's `yes` is the next
//! op, which is what the kernel's audit walks. The user-space filter still runs on every
//! reply (destroy events are not filtered by the kernel), so pushing down is an
//! optimisation, never a change of what is reported.

use std::net::IpAddr;

use crate::filter::{Cidr, Filter};
use crate::parse::diag_msg::{AF_INET, AF_INET6};

/// `INET_DIAG_REQ_BYTECODE`: the request attribute carrying the program.
pub const INET_DIAG_REQ_BYTECODE: u16 = 1;

const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_S_COND: u8 = 7;
const BC_D_COND: u8 = 8;

/// Offsets in a program are `u16`; leave room for the final reject jump.
const MAX_PROGRAM_LEN: usize = 60_000;

/// The networks M-Lab counts as local ([`crate::filter::is_local`]): loopback, link-local,
/// multicast, unspecified. An `AF_INET` condition also matches v4-mapped IPv6 addresses.
const LOCAL_NETWORKS: [&str; 8] = [
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "0.0.0.0/32",
    "::1/128",
    "fe80::/10",
    "ff00::/8",
    "::/128",
];

/// One exclusion test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    /// Local port in `lo..=hi`.
    SrcPorts(u16, u16),
    /// Local address in the network.
    Src(Cidr),
    /// Remote address in the network.
    Dst(Cidr),
}

/// The program excluding what `filter` excludes, or `None` when there is nothing to push
/// down or it would not fit the kernel's 16-bit jump offsets (then only user space filters).
pub fn exclusion_program(filter: &Filter) -> Option<Vec<u8>> {
    let tests = tests_of(filter);
    if tests.is_empty() {
        return None;
    }
    let len: usize = tests.iter().map(|t| test_len(*t) + 4).sum();
    if len > MAX_PROGRAM_LEN {
        return None;
    }
    let mut prog = Vec::with_capacity(len);
    for t in tests {
        emit(&mut prog, t, len);
    }
    debug_assert_eq!(prog.len(), len);
    Some(prog)
}

fn tests_of(filter: &Filter) -> Vec<Test> {
    let mut tests: Vec<Test> = port_ranges(&filter.exclude_src_ports)
        .into_iter()
        .map(|(lo, hi)| Test::SrcPorts(lo, hi))
        .collect();
    if filter.exclude_local {
        for net in LOCAL_NETWORKS {
            // The list above is valid CIDR text; a parse failure would be a bug caught by tests.
            if let Ok(c) = Cidr::parse(net) {
                tests.push(Test::Src(c));
                tests.push(Test::Dst(c));
            }
        }
    }
    // An IPv6 network over v4-mapped space would, in the kernel, also exclude v4-mapped
    // peers, which the user-space filter (M-Lab's `net.IPNet.Contains`) keeps: such a
    // network is left to user space (found by the `filter` fuzz target).
    tests.extend(
        filter
            .exclude_dst
            .iter()
            .copied()
            .filter(|c| !covers_v4_mapped(*c))
            .map(Test::Dst),
    );
    tests
}

/// Whether the kernel's bit comparison of IPv6 network `c` (`inet_diag_bc_run`) matches
/// some v4-mapped address `::ffff:a.b.c.d`, which [`Cidr::contains`] never does.
fn covers_v4_mapped(c: Cidr) -> bool {
    /// `::ffff:0.0.0.0`.
    const V4_MAPPED: u128 = 0xFFFF << 32;
    let IpAddr::V6(net) = c.addr() else {
        return false;
    };
    let bits = u32::from(c.prefix()).min(96);
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    (u128::from(net) ^ V4_MAPPED) & mask == 0
}

/// Sorted, merged ranges of `ports`: `[80, 443, 444, 445]` → `[(80, 80), (443, 445)]`.
fn port_ranges(ports: &[u16]) -> Vec<(u16, u16)> {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for p in sorted {
        match out.last_mut() {
            Some((_, hi)) if u32::from(*hi) + 1 == u32::from(p) => *hi = p,
            _ => out.push((p, p)),
        }
    }
    out
}

/// Bytes of a test's ops, without its JMP.
fn test_len(t: Test) -> usize {
    match t {
        Test::SrcPorts(..) => 16,
        Test::Src(c) | Test::Dst(c) => hostcond_len(c),
    }
}

fn hostcond_len(c: Cidr) -> usize {
    4 + 8 + if c.addr().is_ipv4() { 4 } else { 16 }
}

/// Appends test `t` and its JMP to `prog`, a program of `total` bytes in all.
fn emit(prog: &mut Vec<u8>, t: Test, total: usize) {
    let own = test_len(t);
    // From this test's first op: the next test starts `own + 4` bytes on.
    let next = own + 4;
    match t {
        Test::SrcPorts(lo, hi) => {
            // S_GE lo (fails: skip S_LE and JMP), then S_LE hi (fails: skip JMP).
            op(prog, BC_S_GE, 8, next);
            op(prog, 0, 0, usize::from(lo));
            op(prog, BC_S_LE, 8, next - 8);
            op(prog, 0, 0, usize::from(hi));
        }
        Test::Src(c) | Test::Dst(c) => {
            let code = if matches!(t, Test::Src(_)) {
                BC_S_COND
            } else {
                BC_D_COND
            };
            op(prog, code, own, next);
            hostcond(prog, c);
        }
    }
    // The JMP: always "false", so it takes `no`: past the end of the program, a reject.
    let remaining = total - prog.len();
    op(prog, BC_JMP, 4, remaining + 4);
}

/// `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }` in host order.
fn op(prog: &mut Vec<u8>, code: u8, yes: usize, no: usize) {
    prog.push(code);
    prog.push(u8::try_from(yes).unwrap_or(u8::MAX));
    prog.extend_from_slice(&u16::try_from(no).unwrap_or(u16::MAX).to_ne_bytes());
}

/// `struct inet_diag_hostcond { u8 family; u8 prefix_len; int port; __be32 addr[]; }`, port
/// -1 (any).
fn hostcond(prog: &mut Vec<u8>, c: Cidr) {
    let (family, addr): (u8, Vec<u8>) = match c.addr() {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
    };
    prog.extend_from_slice(&[family, c.prefix(), 0, 0]);
    prog.extend_from_slice(&(-1i32).to_ne_bytes());
    prog.extend_from_slice(&addr);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    /// A socket as the kernel's bytecode sees it (`struct inet_diag_entry`).
    struct Entry {
        family: u8,
        sport: u16,
        src: IpAddr,
        dst: IpAddr,
    }

    /// Mirrors `inet_diag_bc_audit` (the rules the kernel enforces before the dump).
    fn audit(prog: &[u8]) -> Result<(), String> {
        let mut pc = 0usize;
        let mut len = isize::try_from(prog.len()).unwrap();
        while len > 0 {
            let (code, yes, no) = read_op(prog, pc);
            let min_len: isize = match code {
                BC_S_GE | BC_S_LE => 8,
                BC_S_COND | BC_D_COND => {
                    let family = prog[pc + 4];
                    let plen = prog[pc + 5];
                    let addr_len = match family {
                        0 => 0,
                        AF_INET => 4,
                        AF_INET6 => 16,
                        f => return Err(format!("hostcond family {f}")),
                    };
                    if usize::from(plen) > addr_len * 8 {
                        return Err("prefix longer than the address".into());
                    }
                    isize::try_from(4 + 8 + addr_len).unwrap()
                }
                BC_JMP | 0 => 4,
                c => return Err(format!("unknown op {c}")),
            };
            if code != 0 {
                if no < min_len || no > len + 4 || no & 3 != 0 {
                    return Err(format!("bad no {no} at {pc} (len {len})"));
                }
                if no < len && !valid_cc(prog, len - no) {
                    return Err(format!("no {no} at {pc} lands inside an op"));
                }
            }
            if yes < min_len || yes > len + 4 || yes & 3 != 0 {
                return Err(format!("bad yes {yes} at {pc}"));
            }
            pc += usize::try_from(yes).unwrap();
            len -= yes;
        }
        if len == 0 {
            Ok(())
        } else {
            Err(format!("ends at len {len}"))
        }
    }

    fn valid_cc(prog: &[u8], cc: isize) -> bool {
        let mut len = isize::try_from(prog.len()).unwrap();
        let mut pc = 0usize;
        while len >= 0 {
            if cc > len {
                return false;
            }
            if cc == len {
                return true;
            }
            let (_, yes, _) = read_op(prog, pc);
            if yes < 4 || yes & 3 != 0 {
                return false;
            }
            len -= yes;
            pc += usize::try_from(yes).unwrap();
        }
        false
    }

    fn read_op(prog: &[u8], pc: usize) -> (u8, isize, isize) {
        let no = u16::from_ne_bytes([prog[pc + 2], prog[pc + 3]]);
        (
            prog[pc],
            isize::from(prog[pc + 1]),
            isize::try_from(no).unwrap(),
        )
    }

    /// Mirrors `inet_diag_bc_run`: whether the socket passes (is dumped).
    fn run(prog: &[u8], e: &Entry) -> bool {
        let mut pc = 0usize;
        let mut len = isize::try_from(prog.len()).unwrap();
        while len > 0 {
            let (code, yes, no) = read_op(prog, pc);
            let port = |at: usize| u16::from_ne_bytes([prog[at + 2], prog[at + 3]]);
            let holds = match code {
                0 => true,
                BC_JMP => false,
                BC_S_GE => e.sport >= port(pc + 4),
                BC_S_LE => e.sport <= port(pc + 4),
                BC_S_COND | BC_D_COND => {
                    let ip = if code == BC_S_COND { e.src } else { e.dst };
                    cond_holds(&prog[pc + 4..], e.family, ip)
                }
                c => panic!("op {c}"),
            };
            let step = if holds { yes } else { no };
            pc = pc.wrapping_add(usize::try_from(step).unwrap());
            len -= step;
        }
        len == 0
    }

    fn cond_holds(cond: &[u8], family: u8, ip: IpAddr) -> bool {
        let (cfam, plen) = (cond[0], cond[1]);
        let addr = &cond[8..];
        let bytes: Vec<u8> = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        if cfam != 0 && cfam != family {
            // An AF_INET condition on a v4-mapped address of an AF_INET6 socket.
            return family == AF_INET6
                && cfam == AF_INET
                && bytes[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
                && prefix_match(&bytes[12..], addr, plen);
        }
        plen == 0 || prefix_match(&bytes, addr, plen)
    }

    fn prefix_match(a: &[u8], b: &[u8], bits: u8) -> bool {
        (0..usize::from(bits)).all(|i| (a[i / 8] ^ b[i / 8]) & (0x80 >> (i % 8)) == 0)
    }

    fn entry(sport: u16, src: &str, dst: &str) -> Entry {
        let src: IpAddr = src.parse().unwrap();
        let family = if src.is_ipv4() { AF_INET } else { AF_INET6 };
        Entry {
            family,
            sport,
            src,
            dst: dst.parse().unwrap(),
        }
    }

    fn filter(local: bool, ports: &[u16], dst: &[&str]) -> Filter {
        Filter {
            exclude_local: local,
            exclude_src_ports: ports.to_vec(),
            exclude_dst: dst.iter().map(|d| Cidr::parse(d).unwrap()).collect(),
        }
    }

    #[test]
    fn nothing_to_push_down() {
        assert_eq!(exclusion_program(&Filter::default()), None);
    }

    #[test]
    fn ports_merge_into_ranges() {
        assert_eq!(
            port_ranges(&[445, 80, 443, 444, 80, 65535]),
            vec![(80, 80), (443, 445), (65535, 65535)]
        );
        let prog = exclusion_program(&filter(false, &[22, 443, 444], &[])).unwrap();
        assert_eq!(prog.len(), 2 * 20, "two ranges, 20 bytes each");
        audit(&prog).unwrap();
    }

    #[test]
    fn programs_pass_the_kernel_audit() {
        for f in [
            filter(false, &[22], &[]),
            filter(true, &[], &[]),
            filter(false, &[], &["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]),
            filter(
                true,
                &[9, 10, 11, 5000, 65535],
                &["198.51.100.0/24", "::ffff:203.0.113.7"],
            ),
        ] {
            let prog = exclusion_program(&f).unwrap();
            audit(&prog).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        }
    }

    /// The program rejects exactly what the user-space filter rejects.
    #[test]
    fn programs_agree_with_the_user_space_filter() {
        let filters = [
            filter(false, &[22, 443, 444], &[]),
            filter(true, &[], &[]),
            filter(false, &[], &["10.0.0.0/8", "2001:db8::/32"]),
            filter(true, &[8080], &["192.0.2.0/24"]),
        ];
        let addrs = [
            "127.0.0.1",
            "10.1.2.3",
            "192.0.2.9",
            "198.51.100.7",
            "169.254.3.3",
            "224.0.0.251",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "2001:db8::5",
            "2001:db9::5",
            "::ffff:10.9.9.9",
            "::ffff:127.0.0.1",
            "::ffff:192.0.2.200",
            "::ffff:8.8.8.8",
        ];
        for f in &filters {
            let prog = exclusion_program(f).unwrap();
            for sport in [21, 22, 443, 444, 445, 8080, 50000] {
                for src in addrs {
                    for dst in addrs {
                        let e = entry(sport, src, dst);
                        // Only same-family pairs exist; v4-mapped goes with v6.
                        if e.dst.is_ipv4() != e.src.is_ipv4() {
                            continue;
                        }
                        let expect = user_space_accepts(f, &e);
                        assert_eq!(run(&prog, &e), expect, "{f:?} sport {sport} {src} -> {dst}");
                    }
                }
            }
        }
    }

    fn user_space_accepts(f: &Filter, e: &Entry) -> bool {
        if f.exclude_src_ports.contains(&e.sport) {
            return false;
        }
        if f.exclude_local && (crate::filter::is_local(e.src) || crate::filter::is_local(e.dst)) {
            return false;
        }
        !f.exclude_dst.iter().any(|c| c.contains(e.dst))
    }

    /// `::/0` or `::/80` would drop v4-mapped peers in the kernel that user space reports.
    #[test]
    fn v6_networks_over_v4_mapped_space_are_left_to_user_space() {
        for net in ["::/0", "::/30", "::/80", "::fffe:0:0/95"] {
            let c = Cidr::parse(net).unwrap();
            assert!(covers_v4_mapped(c), "{net}");
            assert_eq!(
                exclusion_program(&filter(false, &[], &[net])),
                None,
                "{net}"
            );
        }
        for net in [
            "2001:db8::/32",
            "::/128",
            "::1/128",
            "fe80::/10",
            "::fffe:0:0/96",
            "10.0.0.0/8",
        ] {
            assert!(!covers_v4_mapped(Cidr::parse(net).unwrap()), "{net}");
        }
        let e = entry(50000, "::ffff:192.0.2.1", "::ffff:127.0.0.1");
        let f = filter(false, &[], &["::/30", "2001:db8::/32"]);
        assert!(user_space_accepts(&f, &e));
        assert!(run(&exclusion_program(&f).unwrap(), &e));
    }

    #[test]
    fn too_many_rules_are_left_to_user_space() {
        let many: Vec<String> = (0..3000u32)
            .map(|i| Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i) << 64).to_string())
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(exclusion_program(&filter(false, &[], &refs)), None);
    }
}
