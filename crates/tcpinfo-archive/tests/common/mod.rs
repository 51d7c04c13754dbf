//! Helpers of the archive writer's integration tests: temp dirs, batches made of real
//! M-Lab lines, and reading archive files back (with the zstd crate and the `zstd` CLI).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use tcpinfo_archive::WriteBatch;
use tcpinfo_core::{FLAG_HAS_RECORD, INDEX_ENTRY_LEN};

pub const OPENED: u8 = 0;
pub const CHANGED: u8 = 1;
pub const CLOSED: u8 = 2;

/// A fresh directory under /tmp, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tcpinfo-archive-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The ArchivalRecord lines (with `\n`) of the busy M-Lab fixture, header excluded.
pub fn fixture_lines() -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../tcpinfo-core/tests/fixtures/mlab/ndt-7hhhv_1559749627_0000000000062D84.00000.jsonl.zst",
    );
    let data = zstd::decode_all(std::fs::File::open(path).unwrap()).unwrap();
    data.split_inclusive(|&b| b == b'\n')
        .skip(1)
        .map(<[u8]>::to_vec)
        .collect()
}

/// A batch of `(kind, cookie, line)`; an empty line makes a record without HAS_RECORD.
pub fn batch(recs: &[(u8, u64, &[u8])]) -> WriteBatch {
    let mut b = WriteBatch::default();
    for (kind, cookie, line) in recs {
        let mut e = [0u8; INDEX_ENTRY_LEN];
        e[0] = *kind;
        e[1] = if line.is_empty() { 0 } else { FLAG_HAS_RECORD };
        e[2] = 10;
        e[12..16].copy_from_slice(&u32::try_from(b.lines.len()).unwrap().to_le_bytes());
        e[16..20].copy_from_slice(&u32::try_from(line.len()).unwrap().to_le_bytes());
        e[24..32].copy_from_slice(&cookie.to_le_bytes());
        b.index.extend_from_slice(&e);
        b.lines.extend_from_slice(line);
    }
    b
}

/// Every archive file under `root`, sorted.
pub fn archive_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".jsonl.zst") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `zstd -dc FILE`: (exit success, stdout).
pub fn zstd_dc(path: &Path) -> (bool, Vec<u8>) {
    let out = Command::new("zstd")
        .arg("-dcq")
        .arg(path)
        .output()
        .expect("zstd CLI installed");
    (out.status.success(), out.stdout)
}

/// `zstd -t FILE` succeeds.
pub fn zstd_t(path: &Path) -> bool {
    Command::new("zstd")
        .arg("-tq")
        .arg(path)
        .status()
        .expect("zstd CLI installed")
        .success()
}

/// Whether `path` passes `zstd -t` once the writer is not in the middle of writing it: a
/// frame that fails on a full disk is cut back to the last complete one (or a new file
/// removed) right after the failed write, so a reader may catch the moment in between.
/// Retried for up to a second; a file removed meanwhile counts as readable (none of ours).
pub fn zstd_t_settled(path: &Path) -> bool {
    for _ in 0..40 {
        if !path.exists() || zstd_t(path) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

/// Lines of a byte buffer, each with its `\n`.
pub fn lines_of(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|&b| b == b'\n').collect()
}

/// The header object of a file's first line.
pub fn header(data: &[u8]) -> serde_json::Value {
    let first = lines_of(data)[0];
    serde_json::from_slice(first).unwrap()
}

/// A file's bytes and a hash of them.
pub fn digest(path: &Path) -> (u64, usize) {
    use std::hash::{Hash, Hasher};
    let b = std::fs::read(path).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    b.hash(&mut h);
    (h.finish(), b.len())
}
