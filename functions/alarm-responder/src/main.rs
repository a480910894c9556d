use alarm_responder::AwsResponder;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    medic_aws::init_tracing();
    let responder = &AwsResponder::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        responder.handle(event.payload, medic_aws::Invocation::of(&event.context)).await
    }))
    .await
}
