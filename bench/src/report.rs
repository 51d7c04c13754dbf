//! The JSON report shared by `drain` and `ss_contender`, so runs compare field by field.
//!
//! One flat JSON object per run. Per-socket figures divide totals over the whole run by the
//! number of sockets summed over all polls (`polls * mean sockets per poll`). Fields a tool
//! cannot measure (recvmsg calls of an `ss` child) are `null`, never a made-up zero.

use std::time::Duration;

use crate::sys::CpuTime;

/// What one polling run measured.
#[derive(Debug, Default)]
pub struct PollRun {
    /// `"drain"` or `"ss"`.
    pub tool: &'static str,
    /// Pause between polls, in milliseconds.
    pub interval_ms: u64,
    /// Sockets seen by each poll.
    pub sockets: Vec<u64>,
    /// Wall time of each poll.
    pub wall: Vec<Duration>,
    /// CPU time of the polling work over the whole run.
    pub cpu: CpuTime,
    /// `recvmsg` calls over the whole run, if the tool can count them.
    pub recvmsg_calls: Option<u64>,
    /// Bytes received over the whole run, if the tool can count them.
    pub bytes: Option<u64>,
    /// Tool-specific settings and counters, as `(name, raw JSON value)`.
    pub extra: Vec<(&'static str, String)>,
}

impl PollRun {
    /// Renders the report as one line of JSON.
    ///
    /// Shape: `{"tool","kernel","polls","interval_ms","sockets_per_poll","sockets_min",
    /// "sockets_max","wall_us_p50","wall_us_p99","wall_us_max","user_ns_per_socket",
    /// "sys_ns_per_socket","recvmsg_per_socket","bytes_per_socket","user_ns_total",
    /// "sys_ns_total","recvmsg_total","bytes_total", ...extra}`.
    pub fn to_json(&self, kernel: &str) -> String {
        let polls = self.wall.len();
        let socket_polls: u64 = self.sockets.iter().sum();
        let per_socket = |total: f64| {
            if socket_polls == 0 {
                "null".to_owned()
            } else {
                json_f64(total / as_f64(socket_polls))
            }
        };
        let opt_per_socket =
            |total: Option<u64>| total.map_or("null".to_owned(), |t| per_socket(as_f64(t)));
        let opt_total = |total: Option<u64>| total.map_or("null".to_owned(), |t| t.to_string());
        let mut wall_us: Vec<f64> = self.wall.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        wall_us.sort_by(f64::total_cmp);
        let user_ns = nanos(self.cpu.user);
        let sys_ns = nanos(self.cpu.sys);

        let mut out = String::from("{");
        let mut field = |name: &str, value: String| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            out.push_str(&value);
        };
        field("tool", format!("\"{}\"", self.tool));
        field(
            "kernel",
            format!("\"{}\"", kernel.replace(['"', '\\'], "_")),
        );
        field("polls", polls.to_string());
        field("interval_ms", self.interval_ms.to_string());
        let mean = if polls == 0 {
            0.0
        } else {
            as_f64(socket_polls) / as_f64(polls as u64)
        };
        field("sockets_per_poll", json_f64(mean));
        field(
            "sockets_min",
            self.sockets.iter().min().copied().unwrap_or(0).to_string(),
        );
        field(
            "sockets_max",
            self.sockets.iter().max().copied().unwrap_or(0).to_string(),
        );
        field("wall_us_p50", json_f64(percentile(&wall_us, 50.0)));
        field("wall_us_p99", json_f64(percentile(&wall_us, 99.0)));
        field(
            "wall_us_max",
            json_f64(wall_us.last().copied().unwrap_or(0.0)),
        );
        field("user_ns_per_socket", per_socket(as_f64(user_ns)));
        field("sys_ns_per_socket", per_socket(as_f64(sys_ns)));
        field("recvmsg_per_socket", opt_per_socket(self.recvmsg_calls));
        field("bytes_per_socket", opt_per_socket(self.bytes));
        field("user_ns_total", user_ns.to_string());
        field("sys_ns_total", sys_ns.to_string());
        field("recvmsg_total", opt_total(self.recvmsg_calls));
        field("bytes_total", opt_total(self.bytes));
        for (name, value) in &self.extra {
            field(name, value.clone());
        }
        out.push('}');
        out
    }
}

/// Nearest-rank percentile of sorted values (0 for an empty slice).
pub fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (pct / 100.0 * as_f64(sorted.len() as u64)).ceil();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "rank is in 0..=len"
    )]
    let idx = (rank as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[expect(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
fn as_f64(n: u64) -> f64 {
    n as f64
}

/// A finite float with three decimals (JSON has no NaN/inf: those become `null`).
fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 50.0) - 50.0).abs() < f64::EPSILON);
        assert!((percentile(&v, 99.0) - 99.0).abs() < f64::EPSILON);
        assert!((percentile(&[7.0], 99.0) - 7.0).abs() < f64::EPSILON);
    }

    #[test]
    fn per_socket_divides_by_socket_polls() {
        let run = PollRun {
            tool: "drain",
            sockets: vec![100, 100],
            wall: vec![Duration::from_micros(10); 2],
            cpu: CpuTime {
                user: Duration::from_micros(2),
                sys: Duration::from_micros(4),
            },
            recvmsg_calls: Some(10),
            bytes: None,
            ..PollRun::default()
        };
        let json = run.to_json("6.18");
        assert!(json.contains("\"user_ns_per_socket\":10.000"), "{json}");
        assert!(json.contains("\"sys_ns_per_socket\":20.000"), "{json}");
        assert!(json.contains("\"recvmsg_per_socket\":0.050"), "{json}");
        assert!(json.contains("\"bytes_per_socket\":null"), "{json}");
    }
}
