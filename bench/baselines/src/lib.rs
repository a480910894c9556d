//! Baselines for `make bench`, so each function's figures are also ratios. A binary links only
//! the crates it names, so each `clients-*` binary links exactly the SDK crates it lists.

/// A `main` that does what a function's `main` does before its first event (tracing, the SDK
/// config, one client per listed SDK crate, built once) and then answers every event with
/// `null` without calling AWS.
#[macro_export]
macro_rules! clients_baseline {
    ($($sdk:ident),+ $(,)?) => {
        #[tokio::main(flavor = "current_thread")]
        async fn main() -> Result<(), lambda_runtime::Error> {
            medic_aws::init_tracing();
            let sdk = medic_aws::load_sdk_config().await;
            // black_box: LTO must not drop the clients a function would keep and use.
            let clients = ($($sdk::Client::new(&sdk),)+);
            let clients = std::hint::black_box(&clients);
            lambda_runtime::run(lambda_runtime::service_fn(
                move |_: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
                    std::hint::black_box(clients);
                    Ok::<_, lambda_runtime::Error>(serde_json::Value::Null)
                },
            ))
            .await
        }
    };
}
