// The handler's future nests the engine's, the ledger's and the SDK's; its layout needs more than
// rustc's default query depth of 128.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use medic_aws::Members;
use reconciler::AwsReconciler;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    medic_aws::init_tracing();
    let members = &Members::<AwsReconciler>::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        reconciler::reconcile(members, event.payload, medic_aws::Invocation::of(&event.context)).await
    }))
    .await
}
