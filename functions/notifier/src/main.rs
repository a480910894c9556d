// The handler's future nests the engine's, the ledger's and the SDK's; its layout needs more than
// rustc's default query depth of 128.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use medic_aws::{Invocation, Members, Reach};
use notifier::AwsNoticeDesk;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    medic_aws::init_tracing();
    let medic = &Members::<AwsNoticeDesk>::from_env().await?;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let at = Invocation::of(&event.context);
        match medic.reach(&event.payload, at.now).await? {
            Reach::Ready(desk) => desk.handle(event.payload, at).await,
            Reach::Refused(skip) => Ok(skip),
        }
    }))
    .await
}
