use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use rds_rerouter::AwsRerouter;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    medic_aws::init_tracing();
    let rerouter = &AwsRerouter::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        rerouter.handle(event.payload, medic_aws::Invocation::of(&event.context)).await
    }))
    .await
}
