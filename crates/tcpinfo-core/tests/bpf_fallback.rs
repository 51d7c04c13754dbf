//! Without privileges the BPF mode is refused with `ERR_UNSUPPORTED` naming what is
//! missing, and `auto` falls back to netlink with exactly one warning (issue #16).
//!
//! Runs itself again as an unprivileged user (`setpriv --reuid 65534`, no capabilities):
//! the parent (root) checks the child's exit status.

use std::process::Command;

use tcpinfo_core::{Error, PollMode, Poller, PollerConfig, WarningCode};

/// Set in the unprivileged child.
const CHILD: &str = "TCPINFO_BPF_FALLBACK_CHILD";

fn config(mode: PollMode) -> PollerConfig {
    PollerConfig {
        mode,
        // Joining the destroy groups needs CAP_NET_ADMIN, which the child does not have.
        destroy_events: false,
        ..PollerConfig::default()
    }
}

fn unprivileged_checks() {
    match Poller::new(config(PollMode::Bpf)) {
        Err(Error::Unsupported(what)) => {
            assert!(what.contains("CAP_BPF"), "names what is missing: {what}");
        }
        Err(e) => panic!("expected ERR_UNSUPPORTED, got {} ({e})", e.code()),
        Ok(_) => panic!("mode bpf must fail without privileges"),
    }
    let mut auto = Poller::new(config(PollMode::Auto)).expect("auto falls back");
    assert!(auto.bpf_stats().is_none(), "auto polls with netlink");
    let first = auto.poll();
    let fallback: Vec<_> = first
        .warnings
        .iter()
        .filter(|w| w.code == WarningCode::Unsupported)
        .collect();
    assert_eq!(fallback.len(), 1, "one warning: {:?}", first.warnings);
    assert!(
        fallback[0].message.contains("CAP_BPF"),
        "{}",
        fallback[0].message
    );
    assert!(first.complete);
    for _ in 0..3 {
        let b = auto.poll();
        assert!(b.warnings.is_empty(), "only once: {:?}", b.warnings);
    }
}

#[test]
fn unprivileged_bpf_is_unsupported_and_auto_falls_back_once() {
    if std::env::var_os(CHILD).is_some() {
        unprivileged_checks();
        return;
    }
    let me = std::env::current_exe().expect("test binary");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&me)
        .args([
            "--exact",
            "unprivileged_bpf_is_unsupported_and_auto_falls_back_once",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run setpriv (util-linux)");
    assert!(
        out.status.success(),
        "unprivileged child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child ran the checks: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
