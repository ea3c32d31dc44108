//! `switchboard-server`: parses the flags, binds, prints the URL and serves until SIGINT or SIGTERM.

use clap::Parser;
use switchboard_server::{Config, run_with_proxy};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    // `switchboard-server scenario FILE …`: the lab against your app, headless, as a test.
    let scenario = argv.get(1).is_some_and(|first| first == "scenario");
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            // A scenario's output is its verdicts: the proxy's own log only when something is wrong.
            EnvFilter::new(if scenario { "warn" } else { "info" })
        }))
        .init();
    if scenario {
        switchboard_server::listener::raise_open_file_limit();
        let args = switchboard_server::scenario::Args::parse_from(
            std::iter::once("switchboard-server scenario".to_owned())
                .chain(argv.into_iter().skip(2)),
        );
        return switchboard_server::scenario::main(args).await;
    }
    let config = Config::parse();
    // Every connection is a file: the soft limit (often 1,024) would stop the server long before its
    // memory or CPU do.
    switchboard_server::listener::raise_open_file_limit();
    let listener = match TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("switchboard: cannot listen on {}: {err}", config.addr);
            eprintln!("(is another Switchboard running? choose another address with --addr)");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| config.addr.to_string(), |addr| addr.to_string());
    println!("Switchboard is running at http://{addr}/");
    let proxy = match &config.upstream {
        None => None,
        Some(upstream) => match TcpListener::bind(config.proxy_addr).await {
            Ok(proxy) => {
                let at = proxy
                    .local_addr()
                    .map_or_else(|_| config.proxy_addr.to_string(), |addr| addr.to_string());
                println!(
                    "Your app through Switchboard: http://{at}/ (forwarding to {})",
                    upstream.url
                );
                Some(proxy)
            }
            Err(err) => {
                eprintln!(
                    "switchboard: cannot listen on {} for your app: {err}",
                    config.proxy_addr
                );
                eprintln!("(choose another address with --proxy-addr)");
                return std::process::ExitCode::FAILURE;
            }
        },
    };
    match run_with_proxy(listener, proxy, config, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchboard: server failed: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
