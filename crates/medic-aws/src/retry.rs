//! What the SDK may send again. It retries a call whose connection dropped or timed out after the
//! request went out, or whose answer could not be read, as it retries a throttled one: for a
//! read that is right; for a mutating call AWS may already have applied, it makes the change twice
//! (a second reboot, a second promotion, a failover back). Every mutating call is therefore sent
//! with [`sent_once!`]: the SDK still retries what AWS refused (throttling, 5xx), never what it
//! may have done. The engine reads AWS to learn whether the call happened before anything is
//! sent again (`Remediator::confirm`), after a pause: a request that timed out may still be under
//! way in AWS, and a read right after it would call it not done.

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};

/// Forbids a retry after a failure that leaves open whether AWS applied the call. It runs after
/// the SDK's own classifiers and overrides them only there.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotResentWhenUnanswered;

impl ClassifyRetry for NotResentWhenUnanswered {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(error))
                if error.is_timeout_error() || error.is_response_error() || error.as_connector_error().is_some() =>
            {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "medic: a mutating call is not sent again without an answer"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The configuration override for one mutating call of the SDK crate `$sdk`:
/// `.customize().config_override(sent_once!(aws_sdk_ec2))`.
#[macro_export]
macro_rules! sent_once {
    ($sdk:ident) => {
        $sdk::config::Builder::default().retry_classifier($crate::retry::NotResentWhenUnanswered)
    };
}
