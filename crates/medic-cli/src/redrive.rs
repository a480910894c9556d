//! `medic redrive`: each dead-letter message back through the function it came from, one by one.
//! A message is deleted only once its function handled it; every other one is put back.

use medic_aws::adapters::sqs::SqsDeadLetters;
use medic_aws::ports::{DeadLetter, DeadLetterQueue};
use medic_core::time::EpochSeconds;
use medic_core::Policy;
use serde::Serialize;
use serde_json::Value;

use crate::explain::{explain, Function};
use crate::Resources;

/// How long a message taken for redrive stays hidden from other readers; the ones kept are put
/// back at the end of the run.
const TAKE_SECONDS: i32 = 300;

/// What a dead-letter message holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Letter {
    /// An event and the function it was for.
    Event { function_arn: String, event: Value, via: &'static str },
    /// Something no function can take (a notice SNS could not deliver, a foreign message).
    NotAnEvent(String),
}

/// Reads a message as Lambda's on-failure destination, or an EventBridge rule's dead-letter queue,
/// writes it.
pub fn classify(letter: &DeadLetter) -> Letter {
    let Ok(body) = serde_json::from_str::<Value>(&letter.body) else {
        return Letter::NotAnEvent("its body is not JSON".into());
    };
    if let (Some(arn), Some(payload)) =
        (body.pointer("/requestContext/functionArn").and_then(Value::as_str), body.get("requestPayload"))
    {
        return Letter::Event {
            function_arn: arn.to_owned(),
            event: payload.clone(),
            via: "the function's on-failure destination",
        };
    }
    if let Some((_, target)) = letter.attributes.iter().find(|(name, _)| name == "TARGET_ARN") {
        return Letter::Event { function_arn: target.clone(), event: body, via: "an EventBridge rule" };
    }
    if body.get("Type").and_then(Value::as_str) == Some("Notification") {
        let topic = body.get("TopicArn").and_then(Value::as_str).unwrap_or("a topic");
        return Letter::NotAnEvent(format!(
            "a notice from {topic} that SNS could not deliver to a subscriber, not an event: read it and delete it by hand"
        ));
    }
    Letter::NotAnEvent("neither a Lambda failure record nor an EventBridge dead letter".into())
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redriven {
    pub message_id: String,
    pub function: Option<String>,
    /// `redriven`, `would-redrive`, `refused`, `kept` or `failed`.
    pub result: String,
    pub detail: String,
}

/// Invokes a function synchronously with an event: its answer, or why it failed.
pub trait Invoke {
    fn invoke(&self, function_arn: &str, event: &Value) -> impl std::future::Future<Output = Result<Value, String>>;
}

/// The Lambda Invoke API (RequestResponse).
#[derive(Debug, Clone)]
pub struct LambdaInvoker(pub aws_sdk_lambda::Client);

impl Invoke for LambdaInvoker {
    async fn invoke(&self, function_arn: &str, event: &Value) -> Result<Value, String> {
        let answer = self
            .0
            .invoke()
            .function_name(function_arn)
            .payload(aws_smithy_types::Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| medic_aws::error::classify("lambda:Invoke", e).to_string())?;
        let payload: Value =
            answer.payload().and_then(|p| serde_json::from_slice(p.as_ref()).ok()).unwrap_or(Value::Null);
        match (answer.function_error(), payload.get("errorType")) {
            (None, None) => Ok(payload),
            _ => Err(format!(
                "the function failed: {}",
                payload.get("errorMessage").and_then(Value::as_str).unwrap_or("no message")
            )),
        }
    }
}

/// Every message in the queue at the start, one by one: explained, refused, or handed back to
/// its function (`dry_run`: only explained).
pub async fn redrive(
    sdk: &aws_config::SdkConfig,
    resources: &Resources,
    policy: &Policy,
    options: Options,
    invoker: &impl Invoke,
) -> Result<Vec<Redriven>, String> {
    let queue = SqsDeadLetters::new(aws_sdk_sqs::Client::new(sdk), resources.dlq_url()?);
    let (count, _) = queue.depth().await.map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    let mut kept = Vec::new();
    for _ in 0..count {
        let Some(letter) = queue.receive(1, TAKE_SECONDS).await.map_err(|e| e.to_string())?.pop() else { break };
        let line = one(sdk, resources, policy, &options, invoker, &letter).await;
        if line.result == "redriven" {
            queue.delete(&letter.receipt).await.map_err(|e| e.to_string())?;
        } else {
            kept.push(letter.receipt.clone());
        }
        lines.push(line);
    }
    for receipt in kept {
        queue.put_back(&receipt).await.map_err(|e| e.to_string())?;
    }
    Ok(lines)
}

/// How `redrive` runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    pub force: bool,
    pub now: EpochSeconds,
}

async fn one(
    sdk: &aws_config::SdkConfig,
    resources: &Resources,
    policy: &Policy,
    options: &Options,
    invoker: &impl Invoke,
    letter: &DeadLetter,
) -> Redriven {
    let line = |function: Option<String>, result: &str, detail: String| Redriven {
        message_id: letter.id.clone(),
        function,
        result: result.to_owned(),
        detail,
    };
    let (function_arn, event, via) = match classify(letter) {
        Letter::Event { function_arn, event, via } => (function_arn, event, via),
        Letter::NotAnEvent(why) => return line(None, "kept", why),
    };
    if !resources.is_medic_function(&function_arn) {
        return line(
            Some(function_arn),
            "kept",
            "not one of the stack's functions (its *FunctionArn outputs): medic redrives only to its own".into(),
        );
    }
    let function = match Function::detect(&event) {
        Ok(function) => function,
        Err(why) => return line(Some(function_arn), "kept", why),
    };
    let explanation = match explain(sdk, resources, policy, event.clone(), function, options.now).await {
        Ok(explanation) => explanation,
        Err(why) => return line(Some(function_arn), "kept", why),
    };
    let decision = explanation
        .render()
        .lines()
        .filter(|l| l.starts_with("decision:") || l.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("; ");
    let age = letter.sent_at.map(|sent| options.now - sent);
    if let Some(age) = age.filter(|age| *age > policy.ledger_ttl_seconds) {
        if explanation.may_repeat_an_action() && !options.force {
            return line(
                Some(function_arn),
                "refused",
                format!(
                    "sent {} h ago, past the ledger's retention ({} h), and {} would take an action that is not idempotent or could not tell ({decision}): the record that stops a second attempt may be gone. Check by hand, then redrive with --force",
                    age / 3_600,
                    policy.ledger_ttl_seconds / 3_600,
                    function.name()
                ),
            );
        }
    }
    if options.dry_run {
        return line(Some(function_arn), "would-redrive", format!("from {via} to {}: {decision}", function.name()));
    }
    match invoker.invoke(&function_arn, &event).await {
        Ok(answer) => {
            line(Some(function_arn), "redriven", format!("{} answered {}", function.name(), summary(&answer)))
        }
        Err(why) => line(Some(function_arn), "failed", format!("{why}; the message is back in the queue")),
    }
}

/// An outcome as `status [action] resource: reason`; anything else as (clipped) JSON.
fn summary(answer: &Value) -> String {
    match serde_json::from_value::<medic_core::Outcome>(answer.clone()) {
        Ok(outcome) => {
            let action = outcome.action.map_or(String::new(), |a| format!(" [{a}]"));
            format!("{}{action} {}: {}", outcome.status.as_str(), outcome.resource, outcome.reason)
        }
        Err(_) => clip(&answer.to_string()),
    }
}

fn clip(text: &str) -> String {
    if text.chars().count() <= 300 {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(299).collect();
    clipped.push('…');
    clipped
}

/// One line per message.
pub fn render(lines: &[Redriven]) -> String {
    if lines.is_empty() {
        return "the dead-letter queue is empty\n".to_owned();
    }
    lines
        .iter()
        .map(|l| format!("{} {} {}: {}\n", l.result, l.message_id, l.function.as_deref().unwrap_or("-"), l.detail))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(body: Value, attributes: &[(&str, &str)]) -> DeadLetter {
        DeadLetter {
            id: "m1".into(),
            body: body.to_string(),
            attributes: attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..DeadLetter::default()
        }
    }

    #[test]
    fn given_each_kind_of_dead_letter_when_classified_then_its_function_and_event_or_why_not() {
        let event = serde_json::json!({"source": "aws.ec2", "detail": {}});
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:medic-InstanceHealer:$LATEST";
        let on_failure = letter(
            serde_json::json!({"requestContext": {"functionArn": arn, "condition": "RetriesExhausted"}, "requestPayload": event}),
            &[],
        );
        assert_eq!(
            classify(&on_failure),
            Letter::Event {
                function_arn: arn.into(),
                event: event.clone(),
                via: "the function's on-failure destination"
            }
        );
        let rule = letter(event.clone(), &[("RULE_ARN", "arn:rule"), ("TARGET_ARN", arn)]);
        assert!(matches!(classify(&rule), Letter::Event { via: "an EventBridge rule", .. }));
        let notice = letter(serde_json::json!({"Type": "Notification", "TopicArn": "arn:sns:t", "Message": "x"}), &[]);
        assert!(matches!(classify(&notice), Letter::NotAnEvent(why) if why.contains("SNS could not deliver")));
        let garbage = DeadLetter { body: "not json".into(), ..DeadLetter::default() };
        assert_eq!(classify(&garbage), Letter::NotAnEvent("its body is not JSON".into()));
    }
}
