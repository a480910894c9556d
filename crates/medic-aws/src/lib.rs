//! Ports, the shared guarded engine, and SDK adapters. Each AWS service's adapter sits behind its
//! own cargo feature so a function links only the SDK crates it calls.

pub mod adapters;
pub mod config;
pub mod emf;
pub mod engine;
pub mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
#[cfg(all(feature = "dynamodb", feature = "sns"))]
pub mod members;
pub mod ports;
pub mod retry;

pub use config::{https_client, init_tracing, load_sdk_config, MedicConfig};
pub use engine::{Engine, Invocation};
pub use error::{HandlerError, PortError};
#[cfg(all(feature = "dynamodb", feature = "sns"))]
pub use members::{Members, PerAccount, Reach};

/// Seconds since the epoch from the system clock. Only entrypoints call this; everything below
/// them takes `now` as an argument.
pub fn now_epoch_seconds() -> medic_core::time::EpochSeconds {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}
