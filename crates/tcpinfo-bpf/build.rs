//! Compiles `bpf/changed.bpf.c` with clang into `$OUT_DIR/changed.bpf.o`, embedded by
//! `src/iter.rs`, after generating `vmlinux.h` from the build machine's kernel BTF with
//! bpftool. Without clang, bpftool or BTF the crate still builds: the BPF mode is then
//! absent and says why at run time (`ERR_UNSUPPORTED`).
//!
//! Environment: `TCPINFO_BPF_CLANG` (default `clang`), `TCPINFO_BPF_BPFTOOL` (default
//! `bpftool`), `TCPINFO_BPF_BTF` (default `/sys/kernel/btf/vmlinux`),
//! `TCPINFO_BPF_DISABLE=1` builds without the program.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/changed.bpf.c");
    for var in [
        "TCPINFO_BPF_CLANG",
        "TCPINFO_BPF_BPFTOOL",
        "TCPINFO_BPF_BTF",
        "TCPINFO_BPF_DISABLE",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rustc-check-cfg=cfg(tcpinfo_bpf_object)");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let absent = out.join("absent.txt");
    match build(&out) {
        Ok(()) => {
            println!("cargo:rustc-cfg=tcpinfo_bpf_object");
            std::fs::write(&absent, "").expect("write OUT_DIR/absent.txt");
        }
        Err(why) => {
            println!("cargo:warning=tcpinfo-bpf: BPF poll mode not built: {why}");
            std::fs::write(&absent, why).expect("write OUT_DIR/absent.txt");
        }
    }
}

fn build(out: &Path) -> Result<(), String> {
    if std::env::var_os("TCPINFO_BPF_DISABLE").is_some_and(|v| v == "1") {
        return Err("disabled at build time (TCPINFO_BPF_DISABLE=1)".into());
    }
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let clang = env("TCPINFO_BPF_CLANG", "clang");
    let bpftool = env("TCPINFO_BPF_BPFTOOL", "bpftool");
    let btf = env("TCPINFO_BPF_BTF", "/sys/kernel/btf/vmlinux");
    if !Path::new(&btf).exists() {
        return Err(format!("no kernel BTF at {btf} to generate vmlinux.h from"));
    }
    let header = Command::new(&bpftool)
        .args(["btf", "dump", "file", &btf, "format", "c"])
        .output()
        .map_err(|e| format!("cannot run {bpftool} (install bpftool): {e}"))?;
    if !header.status.success() {
        return Err(format!(
            "{bpftool} btf dump failed: {}",
            String::from_utf8_lossy(&header.stderr).trim()
        ));
    }
    std::fs::write(out.join("vmlinux.h"), &header.stdout)
        .map_err(|e| format!("write vmlinux.h: {e}"))?;
    let object = out.join("changed.bpf.o");
    // The syscall hook reads the x86-64 argument registers; elsewhere it is left out.
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "-D__TARGET_ARCH_x86",
        _ => "-D__TARGET_ARCH_other",
    };
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", arch])
        .arg("-I")
        .arg(out)
        .args(["-c", "bpf/changed.bpf.c", "-o"])
        .arg(&object)
        .status()
        .map_err(|e| format!("cannot run {clang} (install clang): {e}"))?;
    if !status.success() {
        return Err(format!("{clang} failed to compile bpf/changed.bpf.c"));
    }
    // DWARF is not needed at load time (BTF and its CO-RE records stay): ~700 KB → ~30 KB.
    let stripped = Command::new("llvm-strip")
        .args(["--strip-debug"])
        .arg(&object)
        .status();
    if !stripped.is_ok_and(|s| s.success()) {
        println!("cargo:warning=tcpinfo-bpf: llvm-strip not found, the object keeps its DWARF");
    }
    Ok(())
}
