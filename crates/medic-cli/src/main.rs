use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = medic_cli::Cli::parse();
    medic_aws::emf::silence();
    let sdk = medic_aws::load_sdk_config().await;
    match medic_cli::run(cli, &sdk, medic_aws::now_epoch_seconds()).await {
        Ok(output) => {
            print!("{output}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("medic: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
