//! Typed errors of the producer's API, each with a stable code. Delivery failures are not
//! errors of the API: they are retried, counted ([`crate::ProducerStats`]) and, at close,
//! reported ([`crate::CloseReport`]).

use std::fmt;

/// Errors returned by [`crate::KafkaProducer`].
#[derive(Debug)]
pub enum Error {
    /// A configuration value was invalid (the message names the option and the value).
    Config(String),
    /// The producer is closed.
    Closed,
    /// The producer thread could not be started, or died.
    Thread(String),
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(_) => "ERR_CONFIG",
            Error::Closed => "ERR_CLOSED",
            Error::Thread(_) => "ERR_THREAD",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid kafka configuration: {m}"),
            Error::Closed => write!(f, "the kafka producer is closed"),
            Error::Thread(m) => write!(f, "kafka producer thread: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias of the producer.
pub type Result<T> = std::result::Result<T, Error>;
