//! The core's shared facts (codes, states, families, the batch index layout) for the
//! TypeScript side's agreement test (`__test__/vocabulary.spec.ts`): each language
//! defines them once, and this is how the test sees the Rust definitions.

use napi_derive::napi;

/// The core's vocabulary.
#[napi(object)]
pub struct NativeVocabulary {
    /// Every error code of the core.
    pub error_codes: Vec<String>,
    /// Every poll warning code.
    pub warning_codes: Vec<String>,
    /// TCP state names as `ss` prints them, indexed by state number.
    pub state_names: Vec<String>,
    /// `AF_INET`.
    pub af_inet: u32,
    /// `AF_INET6`.
    pub af_inet6: u32,
    /// Bytes of one batch index entry.
    pub index_entry_len: u32,
    /// Offset of an index entry's namespace-table position (`u32`).
    pub index_netns_offset: u32,
    /// Smallest `maxCpu`.
    pub min_max_cpu: f64,
    /// Index flag: the record has a payload and a line.
    pub flag_has_record: u32,
    /// Index flag: reported by a destroy event.
    pub flag_from_destroy_event: u32,
    /// Index flag: closed before any poll saw it.
    pub flag_unseen: u32,
    /// `idiag_states` mask of every state.
    pub all_states: u32,
    /// Largest queue depth.
    pub max_queue_depth: u32,
    /// Largest `maxQueuedBytes`.
    pub max_max_queued_bytes: f64,
    /// Longest poll interval, ms.
    pub max_interval_ms: f64,
    /// `tcp_info` field names (camelCase) a change rule may name.
    pub tcp_info_fields: Vec<String>,
}

/// The core's vocabulary, for the agreement test.
#[napi]
pub fn native_vocabulary() -> NativeVocabulary {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect();
    #[expect(clippy::cast_precision_loss, reason = "bounds far below 2^53")]
    NativeVocabulary {
        error_codes: s(&tcpinfo_core::ERROR_CODES),
        warning_codes: tcpinfo_core::WARNING_CODES
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        state_names: s(&tcpinfo_core::STATE_NAMES),
        af_inet: tcpinfo_core::parse::diag_msg::AF_INET.into(),
        af_inet6: tcpinfo_core::parse::diag_msg::AF_INET6.into(),
        index_entry_len: u32::try_from(tcpinfo_core::INDEX_ENTRY_LEN).unwrap_or(u32::MAX),
        index_netns_offset: u32::try_from(tcpinfo_core::INDEX_NETNS_OFFSET).unwrap_or(u32::MAX),
        min_max_cpu: tcpinfo_core::MIN_MAX_CPU,
        flag_has_record: tcpinfo_core::FLAG_HAS_RECORD.into(),
        flag_from_destroy_event: tcpinfo_core::FLAG_FROM_DESTROY_EVENT.into(),
        flag_unseen: tcpinfo_core::FLAG_UNSEEN.into(),
        all_states: tcpinfo_core::ALL_STATES,
        max_queue_depth: u32::try_from(tcpinfo_core::MAX_QUEUE_DEPTH).unwrap_or(u32::MAX),
        max_max_queued_bytes: tcpinfo_core::MAX_MAX_QUEUED_BYTES as f64,
        max_interval_ms: tcpinfo_core::MAX_POLL_INTERVAL.as_secs_f64() * 1000.0,
        tcp_info_fields: tcpinfo_core::parse::tcp_info::FIELDS
            .iter()
            .map(|f| f.name.to_owned())
            .collect(),
    }
}
