//! Best-effort names of anonymous namespaces: a container id from the cgroup path of a
//! process in it (Docker, containerd, CRI-O and Podman put the 64-hex id there).

/// A container id (64 hex digits) in `/proc/PID/cgroup`, if any: the last one of the
/// paths, as nested containers list the outer id first.
pub fn container_id(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .filter_map(last_hex_id)
        .next_back()
}

/// The last run of exactly 64 hex digits in a cgroup path.
pub fn last_hex_id(path: &str) -> Option<String> {
    path.split(|c: char| !c.is_ascii_hexdigit())
        .rfind(|run| run.len() == 64)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_found_in_the_usual_cgroup_paths() {
        let id = "a".repeat(64);
        assert_eq!(
            last_hex_id(&format!("/system.slice/docker-{id}.scope")),
            Some(id.clone())
        );
        assert_eq!(
            last_hex_id(&format!("/kubepods/besteffort/pod1/{id}")),
            Some(id.clone())
        );
        assert_eq!(last_hex_id(&format!("/docker/{id}/init.scope")), Some(id));
        assert_eq!(
            last_hex_id("/user.slice/user-0.slice/session-1.scope"),
            None
        );
        assert!(container_id(std::process::id()).is_none_or(|s| s.len() == 64));
    }
}
