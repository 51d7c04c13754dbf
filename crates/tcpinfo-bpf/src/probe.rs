//! What the BPF mode needs, checked before loading so that a missing piece is named:
//! the program built in, kernel BTF, and `CAP_BPF` + `CAP_PERFMON` (or `CAP_SYS_ADMIN`).

use crate::error::BpfError;

/// Why `build.rs` did not build the program; empty when it did.
const ABSENT: &str = include_str!(concat!(env!("OUT_DIR"), "/absent.txt"));
/// The kernel's BTF, needed to relocate the program (CO-RE) and to find `bpf_iter_tcp`.
pub(crate) const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
/// `CAP_SYS_ADMIN`.
const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_PERFMON` (Linux 5.8).
const CAP_PERFMON: u32 = 38;
/// `CAP_BPF` (Linux 5.8).
const CAP_BPF: u32 = 39;

/// Whether this build carries the BPF program; `Err` says why not.
///
/// # Errors
/// The reason `build.rs` gave (no clang, no bpftool, disabled).
pub fn built_in() -> Result<(), String> {
    if ABSENT.is_empty() {
        Ok(())
    } else {
        Err(ABSENT.to_owned())
    }
}

/// Checks that the BPF mode can run in this process.
///
/// # Errors
/// [`BpfError::Unsupported`] naming the first thing missing.
pub fn check_support() -> Result<(), BpfError> {
    check_support_at(std::path::Path::new(KERNEL_BTF))
}

/// [`check_support`] with the kernel's BTF looked for at `btf` (tests name a missing one).
///
/// # Errors
/// As [`check_support`].
pub fn check_support_at(btf: &std::path::Path) -> Result<(), BpfError> {
    built_in()
        .map_err(|why| BpfError::Unsupported(format!("this build has no BPF program ({why})")))?;
    if !btf.exists() {
        return Err(BpfError::Unsupported(format!(
            "the kernel has no BTF ({} missing: CONFIG_DEBUG_INFO_BTF)",
            btf.display()
        )));
    }
    let caps = effective_caps()
        .map_err(|e| BpfError::Unsupported(format!("cannot read the process capabilities: {e}")))?;
    let has = |c: u32| caps & (1u64 << c) != 0;
    if !(has(CAP_SYS_ADMIN) || has(CAP_BPF) && has(CAP_PERFMON)) {
        return Err(BpfError::Unsupported(
            "not privileged: needs CAP_BPF and CAP_PERFMON, or root".into(),
        ));
    }
    Ok(())
}

/// `CapEff` of the calling thread.
fn effective_caps() -> std::io::Result<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other("no CapEff line in /proc/thread-self/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel without BTF is named as such; a build without the program says so first.
    #[test]
    fn what_is_missing_is_named() {
        let e = check_support_at(std::path::Path::new("/nonexistent/vmlinux")).unwrap_err();
        assert_eq!(e.code(), "ERR_UNSUPPORTED");
        let expected = if built_in().is_ok() {
            "the kernel has no BTF"
        } else {
            "this build has no BPF program"
        };
        assert!(e.to_string().contains(expected), "{e}");
    }
}
