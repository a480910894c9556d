//! Errors at the AWS boundary, classified once: retryable (throttling, 5xx, timeouts, network) or
//! not, and mapped to the Lambda runtime's `Diagnostic` at the handler boundary.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;
use medic_core::{ConfigError, MalformedEvent};

/// An AWS call (or a port fake) that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct PortError {
    pub operation: String,
    pub message: String,
    pub retryable: bool,
    /// The AWS error code, when AWS sent one (`ValidationError`, `Throttling`…).
    pub code: Option<String>,
}

impl PortError {
    pub fn permanent(operation: &str, message: impl Into<String>) -> Self {
        Self { operation: operation.into(), message: message.into(), retryable: false, code: None }
    }

    pub fn retryable(operation: &str, message: impl Into<String>) -> Self {
        Self { operation: operation.into(), message: message.into(), retryable: true, code: None }
    }
}

const RETRYABLE_CODES: [&str; 13] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceededException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    // Route 53: an earlier change to the same record set is still propagating.
    "PriorRequestNotComplete",
];

/// Classifies an SDK error: what AWS said, and whether a later retry can succeed.
pub fn classify<E>(operation: &str, error: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().map(str::to_owned);
            let message = service.err().message().unwrap_or("no message").to_owned();
            let retryable =
                status >= 500 || status == 429 || code.as_deref().is_some_and(|c| RETRYABLE_CODES.contains(&c));
            PortError {
                operation: operation.into(),
                message: format!("{} (HTTP {status}): {message}", code.as_deref().unwrap_or("UnknownError")),
                retryable,
                code,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => PortError {
            operation: operation.into(),
            message: aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
            retryable: true,
            code: None,
        },
        _ => PortError {
            operation: operation.into(),
            message: aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
            retryable: false,
            code: None,
        },
    }
}

/// What a handler returns when it cannot finish. Lambda sees an error either way; `error_type`
/// tells operators (and the on-failure destination) whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Malformed(#[from] MalformedEvent),
    #[error("this function does not handle {0}")]
    WrongFunction(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Aws(#[from] PortError),
}

impl HandlerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Aws(error) if error.retryable)
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Self {
        let error_type = if error.is_retryable() { "Retryable" } else { "NonRetryable" };
        Diagnostic { error_type: error_type.into(), error_message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_handler_errors_when_diagnosed_then_type_says_whether_retry_helps() {
        let throttled =
            HandlerError::Aws(PortError::retryable("SetInstanceHealth", "Throttling (HTTP 400): slow down"));
        let diagnostic = Diagnostic::from(throttled);
        assert_eq!(diagnostic.error_type, "Retryable");
        assert_eq!(diagnostic.error_message, "SetInstanceHealth failed: Throttling (HTTP 400): slow down");

        let malformed = medic_core::parse_event(&serde_json::json!({"source": "aws.ec2"})).expect_err("malformed");
        let diagnostic = Diagnostic::from(HandlerError::from(malformed));
        assert_eq!(diagnostic.error_type, "NonRetryable");
        assert_eq!(diagnostic.error_message, "malformed event: missing field `detail-type`");
    }
}
