//! The text layer of a source: JSON lines or raw netlink messages to records in the batch.

use tcpinfo_core::parse::diag_msg::{parse_diag, InetDiagMsg, INET_DIAG_MSG_LEN};
use tcpinfo_core::parse::nlmsg::{NLMSG_DONE, NLMSG_HDR_LEN, SOCK_DIAG_BY_FAMILY};
use tcpinfo_core::{write_record_line, RecordKind, GO_ZERO_TIME};

use super::{ArchiveDecoder, Content, Step, TCPDIAG_GETSOCK};
use crate::batch::{NewRecord, Segment};
use crate::error::ErrorKind;
use crate::fast_line;
use crate::json::scan_line;
use crate::payload::append_payload;

impl ArchiveDecoder {
    /// Processes complete lines or messages in `text`.
    pub(super) fn process_text(&mut self) -> Step {
        loop {
            if self.stopped || self.full() {
                return Step::Yield;
            }
            let Some(s) = self.source.as_mut() else {
                return Step::NeedMore;
            };
            if s.finished {
                return Step::NeedMore;
            }
            match s.content {
                Content::Unknown => {
                    let rest = &s.text[s.text_pos..s.text_end];
                    let Some(first) = rest.iter().position(|c| !c.is_ascii_whitespace()) else {
                        return Step::NeedMore;
                    };
                    if rest[first] == b'{' {
                        s.content = Content::Jsonl;
                    } else if rest.len() >= NLMSG_HDR_LEN {
                        if looks_like_nlmsg(rest) {
                            s.content = Content::Netlink;
                        } else {
                            let off = s.text_offset + (s.text_pos + first) as u64;
                            self.fail(
                                ErrorKind::Foreign,
                                None,
                                off,
                                false,
                                "neither ArchivalRecord JSON lines nor a netlink dump".into(),
                            );
                            return Step::Yield;
                        }
                    } else {
                        return Step::NeedMore;
                    }
                }
                Content::Jsonl => {
                    if let Step::NeedMore = self.next_line() {
                        return Step::NeedMore;
                    }
                }
                Content::Netlink => {
                    if let Step::NeedMore = self.next_message() {
                        return Step::NeedMore;
                    }
                }
            }
        }
    }

    pub(super) fn next_line(&mut self) -> Step {
        let max_line = self.opts.max_line_bytes;
        let Some(s) = self.source.as_mut() else {
            return Step::NeedMore;
        };
        let rest = &s.text[s.text_pos..s.text_end];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            if rest.len() > max_line {
                let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
                s.line_no = no;
                let skipping = s.skipping_long_line;
                s.skipping_long_line = true;
                s.text_pos = s.text_end;
                if !skipping {
                    self.record_error(
                        ErrorKind::LineTooLong,
                        no,
                        off,
                        format!("line longer than {max_line} bytes"),
                    );
                }
            }
            return Step::NeedMore;
        };
        let start = s.text_pos;
        s.text_pos += nl + 1;
        if s.skipping_long_line {
            s.skipping_long_line = false;
            return Step::Yield;
        }
        s.line_no += 1;
        let (no, off) = (s.line_no, s.text_offset + start as u64);
        let mut end = start + nl;
        if end > start && s.text[end - 1] == b'\r' {
            end -= 1;
        }
        if nl + 1 > max_line {
            self.record_error(
                ErrorKind::LineTooLong,
                no,
                off,
                format!("line longer than {max_line} bytes"),
            );
            return Step::Yield;
        }
        // Lines are moved out of `text` to free the borrow; swap in a scratch buffer.
        let text = std::mem::take(&mut s.text);
        self.line(&text[start..end], no, off);
        if let Some(s) = self.source.as_mut() {
            s.text = text;
        }
        Step::Yield
    }

    pub(super) fn next_message(&mut self) -> Step {
        let max = self.opts.max_line_bytes;
        let Some(s) = self.source.as_mut() else {
            return Step::NeedMore;
        };
        let rest = &s.text[s.text_pos..s.text_end];
        if rest.len() < NLMSG_HDR_LEN {
            return Step::NeedMore;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        let (no, off) = (s.line_no + 1, s.text_offset + s.text_pos as u64);
        if !(NLMSG_HDR_LEN..=max).contains(&len) {
            self.fail(
                ErrorKind::Netlink,
                Some(no),
                off,
                false,
                format!("netlink message length {len} is impossible"),
            );
            return Step::Yield;
        }
        if rest.len() < len {
            return Step::NeedMore;
        }
        let start = s.text_pos;
        s.text_pos += len;
        s.line_no = no;
        match ty {
            NLMSG_DONE => Step::Yield,
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                let text = std::mem::take(&mut s.text);
                self.netlink_record(&text[start + NLMSG_HDR_LEN..start + len], no, off);
                if let Some(s) = self.source.as_mut() {
                    s.text = text;
                }
                Step::Yield
            }
            _ => {
                self.record_error(
                    ErrorKind::Netlink,
                    no,
                    off,
                    format!("netlink message type {ty} is not an inet_diag reply"),
                );
                Step::Yield
            }
        }
    }

    /// One JSONL line (without `\n`): a header, a record, or an error.
    pub(super) fn line(&mut self, line: &[u8], no: u64, off: u64) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.batch.stats.lines += 1;
        let payload_start = self.batch.records.payloads.len();
        if let Some(nanos) =
            fast_line::record_line(line, &mut self.batch.records.payloads, &mut self.days)
        {
            self.push_line(line, payload_start, nanos);
            return;
        }
        if let Err(e) = scan_line(line, &mut self.scanned) {
            self.record_error(
                ErrorKind::Json,
                no,
                off + e.at as u64,
                format!("not an ArchivalRecord: {}", e.what),
            );
            return;
        }
        let Some(s) = self.source.as_mut() else {
            return;
        };
        let header = self.scanned.metadata.take().map(|m| {
            s.segment = Segment {
                source: s.segment.source.clone(),
                uuid: m.uuid,
                sequence: m.sequence,
                start_time: m.start_time,
            };
            s.segment_in_batch = None;
            s.first_record = true;
        });
        if header.is_some() {
            self.batch.stats.headers += 1;
        }
        let Some(raw_idm) = self.scanned.raw_idm else {
            if header.is_none() {
                self.record_error(
                    ErrorKind::Record,
                    no,
                    off,
                    "record has neither Metadata nor RawIDM".into(),
                );
            }
            return;
        };
        if let Err(what) = append_payload(
            &mut self.batch.records.payloads,
            line,
            &self.scanned,
            raw_idm,
        ) {
            self.record_error(ErrorKind::Record, no, off, what.into());
            return;
        }
        let nanos = self.scanned.stamp.map_or(GO_ZERO_TIME, |t| t.nanos);
        self.push_line(line, payload_start, nanos);
    }

    /// Adds a record whose payload is in place from `payload_start` on: its line, its entry.
    fn push_line(&mut self, line: &[u8], payload_start: usize, nanos: i64) {
        let line_start = self.batch.records.lines.len();
        self.batch.records.lines.extend_from_slice(line);
        self.batch.records.lines.push(b'\n');
        self.commit(payload_start, line_start, nanos);
    }

    /// One raw netlink reply payload.
    pub(super) fn netlink_record(&mut self, payload: &[u8], no: u64, off: u64) {
        self.batch.stats.lines += 1;
        let Ok((msg, attrs)) = parse_diag(payload) else {
            self.record_error(
                ErrorKind::Record,
                no,
                off,
                "malformed inet_diag reply".into(),
            );
            return;
        };
        let rec = &mut self.batch.records;
        let payload_start = rec.payloads.len();
        rec.payloads.extend_from_slice(payload);
        let line_start = rec.lines.len();
        write_record_line(&mut rec.lines, GO_ZERO_TIME, &msg, &attrs);
        self.commit(payload_start, line_start, GO_ZERO_TIME);
    }

    pub(super) fn commit(&mut self, payload_start: usize, line_start: usize, nanos: i64) {
        let Some(s) = self.source.as_mut() else {
            return;
        };
        let segment = if let Some(i) = s.segment_in_batch {
            i
        } else {
            self.batch.segments.push(s.segment.clone());
            let i = self.batch.segments.len() - 1;
            s.segment_in_batch = Some(i);
            i
        };
        let kind = if s.first_record && s.segment.sequence == Some(0) {
            RecordKind::Opened
        } else {
            RecordKind::Changed
        };
        s.first_record = false;
        let idm = &self.batch.records.payloads[payload_start..payload_start + INET_DIAG_MSG_LEN];
        let (family, state, cookie) = match InetDiagMsg::new(idm) {
            Ok(m) => (m.family(), m.state(), m.cookie()),
            Err(_) => (0, 0, 0),
        };
        self.batch.commit_record(&NewRecord {
            kind,
            family,
            state,
            cookie,
            nanos,
            segment,
            payload_start,
            line_start,
        });
    }
}

/// Whether `b` starts with a plausible `nlmsghdr` of an `inet_diag` reply.
fn looks_like_nlmsg(b: &[u8]) -> bool {
    let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let ty = u16::from_ne_bytes([b[4], b[5]]);
    (ty == SOCK_DIAG_BY_FAMILY || ty == TCPDIAG_GETSOCK) && len >= NLMSG_HDR_LEN + INET_DIAG_MSG_LEN
}
