//! `loadgen`: see the library's documentation, or `loadgen --help`.

use clap::Parser;
use switchboard_loadgen::{LoadConfig, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(LoadConfig::parse()).await {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
