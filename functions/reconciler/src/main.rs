use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use reconciler::AwsReconciler;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    medic_aws::init_tracing();
    let reconciler = &AwsReconciler::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        reconciler.handle(event.payload, medic_aws::Invocation::of(&event.context)).await
    }))
    .await
}
