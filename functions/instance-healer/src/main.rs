// The handler's future nests the engine's, the ledger's and the SDK's; its layout needs more than
// rustc's default query depth of 128.
#![recursion_limit = "256"]

use instance_healer::AwsHealer;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use medic_aws::{Invocation, Members, Reach};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    medic_aws::init_tracing();
    let medic = &Members::<AwsHealer>::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let at = Invocation::of(&event.context);
        match medic.reach(&event.payload, at.now).await? {
            Reach::Ready(healer) => instance_healer::handle(&healer, event.payload, at).await,
            Reach::Refused(skip) => Ok(skip),
        }
    }))
    .await
}
