//! Runs walks of the current namespace and prints what each saw (a diagnostic).
#![expect(clippy::print_stdout, reason = "a command-line diagnostic")]

use tcpinfo_bpf::{ChangeIter, Entry, IterConfig};

fn main() {
    let mut it = ChangeIter::load(IterConfig {
        states: 0xF37,
        ipv4: std::env::var_os("NO_FAMILIES").is_none(),
        ipv6: std::env::var_os("NO_FAMILIES").is_none(),
        fp_flags: std::env::var("FP_FLAGS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        events: false,
        dirty_capacity: 0,
    })
    .expect("load");
    for i in 0..6 {
        let emit_all = i % 3 == 2;
        let (mut changed, mut seen, mut mini) = (0, 0, 0);
        let t = std::time::Instant::now();
        let s = it
            .walk(emit_all, |e| match e {
                Entry::Changed(_) => changed += 1,
                Entry::Seen { .. } => seen += 1,
                Entry::Mini(_) => mini += 1,
                Entry::End { .. } | Entry::Dirty { .. } => {}
            })
            .expect("walk");
        println!(
            "walk {i} emit_all={emit_all}: {s:?} changed={changed} seen={seen} mini={mini} in {:?}",
            t.elapsed()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
