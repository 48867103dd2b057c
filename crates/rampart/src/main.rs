//! The `rampart` command: run the proxy, or check a configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rampart::config::{self, ConfigErrors, Loaded};
use rampart::listen::Server;
use rampart::observe::{AccessLog, Metrics};

/// rampart: a self-hosted edge reverse proxy.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy. Without -c, runs the embedded default: 127.0.0.1:8080 in front of a demo origin.
    Run {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and report every problem with file, line, column and key.
    Check {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Try a rules-language expression before deploying it.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Certificates for local use.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Generate a self-signed certificate and key for local use (never for production:
    /// browsers will warn). Writes DIR/HOST.pem and DIR/HOST.key and prints the zone's
    /// `tls = { ... }` line.
    Dev {
        /// Host name the certificate is for (repeat for more, e.g. --host '*.example.test').
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Directory to write into.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Compile an expression against the HTTP fields; prints `ok` or the error with a caret.
    Check {
        /// The expression, e.g. 'http.request.uri.path wildcard "/admin*"'.
        expression: String,
    },
    /// Evaluate an expression against a raw HTTP/1.1 request; prints true or false.
    /// Exit status: 0 for true, 1 for false, 2 for an error.
    Test {
        /// The expression.
        expression: String,
        /// A file holding the raw request (head, optionally a body).
        #[arg(long)]
        request: PathBuf,
        /// The client IP the request is taken to come from.
        #[arg(long, default_value = "127.0.0.1")]
        client_ip: std::net::IpAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config } => run(config),
        Command::Certs {
            command: CertsCommand::Dev { hosts, dir },
        } => match rampart::tls::write_dev_certificate(&hosts, &dir) {
            Ok((cert, key)) => {
                println!("wrote {} and {}", cert.display(), key.display());
                println!(
                    "tls = {{ cert = \"{}\", key = \"{}\" }}",
                    cert.display(),
                    key.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Rules {
            command: RulesCommand::Check { expression },
        } => match rampart::rules_cli::check(&expression) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Rules {
            command:
                RulesCommand::Test {
                    expression,
                    request,
                    client_ip,
                },
        } => {
            let result = rampart::rules_cli::read_request(&request)
                .and_then(|raw| rampart::rules_cli::test(&expression, &raw, client_ip));
            match result {
                Ok(true) => {
                    println!("true");
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    println!("false");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn report(errors: &ConfigErrors) {
    for w in &errors.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("{errors}");
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load_file(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok ({} zone{})",
                path.display(),
                loaded.config.zones.len(),
                if loaded.config.zones.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

fn run(path: Option<PathBuf>) -> ExitCode {
    let loaded = match &path {
        Some(p) => config::load_file(p),
        None => config::load_str(config::EMBEDDED_NAME, config::EMBEDDED_DEFAULT, None),
    };
    let Loaded { config, warnings } = match loaded {
        Ok(l) => l,
        Err(e) => {
            report(&e);
            return ExitCode::FAILURE;
        }
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config, path))
}

/// Serves `config` (with the demo origin when it is the embedded default) until SIGTERM or
/// SIGINT; SIGHUP reloads `path`.
async fn serve(mut config: config::Config, path: Option<PathBuf>) -> ExitCode {
    let signals = Signals::install();
    if path.is_none() {
        match rampart::demo::start().await {
            Ok(addr) => {
                config.zones[0].origin = config::OriginAddr::parse(&format!("http://{addr}"))
                    .expect("a socket address is a valid origin");
                tracing::info!("demo origin listening on {addr}");
            }
            Err(e) => {
                eprintln!("error: cannot start the demo origin: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let metrics = Arc::new(Metrics::new());
    let log = match AccessLog::start(
        &config.server.access_log,
        &config.server.access_log_fields,
        metrics.clone(),
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let zones: Vec<String> = config.zones.iter().map(|z| z.name.clone()).collect();
    let workers = config.server.workers;
    let drain = config.server.drain_timeout;
    // `local_addrs` lists `listen`, then `tls_listen`.
    let plain = config.server.listen.len();
    let log_at_exit = log.clone();
    let server = match Server::start_workers(config, log, metrics, workers).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (i, a) in server.local_addrs.iter().enumerate() {
        let scheme = if i < plain { "http" } else { "https" };
        tracing::info!(
            "rampart listening on {scheme}://{a} for zones: {}",
            zones.join(", ")
        );
    }
    if let Some(a) = server.admin_addr {
        tracing::info!("metrics on http://{a}/metrics");
    }
    let mut signals = signals;
    while signals.wait().await == Signal::Reload {
        reload(path.as_deref(), &server);
    }
    tracing::info!("shutting down: finishing in-flight requests");
    let left = server.shutdown().await;
    if left > 0 {
        tracing::warn!("{left} connection(s) still open after the drain timeout; closing them");
    }
    flush_log(log_at_exit, drain).await;
    ExitCode::SUCCESS
}

/// Lines of the last requests are still waiting for the writer's next batch. A sink that does
/// not take them (a pipe nobody reads, a stalled disk) gets `drain`, then rampart exits
/// without them rather than never.
async fn flush_log(log: AccessLog, drain: std::time::Duration) {
    let (done, flushed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        log.close();
        let _ = done.send(());
    });
    if tokio::time::timeout(drain, flushed).await.is_err() {
        tracing::warn!(
            "the access log did not take its last lines within the drain timeout ({}); \
             exiting without them",
            humantime::format_duration(drain)
        );
    }
}

/// SIGHUP: loads the configuration file again and, when it is valid, swaps it in for new
/// requests. A broken file changes nothing: its errors are logged, the running configuration
/// stays. (The embedded default has no file to read again.)
fn reload(path: Option<&std::path::Path>, server: &Server) {
    let Some(path) = path else {
        tracing::warn!("SIGHUP: running the embedded default, there is no file to reload");
        return;
    };
    match config::load_file(path) {
        Ok(Loaded { config, warnings }) => {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            let zones = config.zones.len();
            for key in server.reload(config) {
                tracing::warn!("SIGHUP: `{key}` changed; it takes effect at the next restart");
            }
            tracing::info!(
                "SIGHUP: configuration reloaded from {} ({zones} zones)",
                path.display()
            );
        }
        Err(e) => {
            for err in &e.errors {
                tracing::error!("SIGHUP: {err}");
            }
            tracing::error!(
                "SIGHUP: {} is not valid; still running the previous configuration",
                path.display()
            );
        }
    }
}

/// What a signal asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGTERM or Ctrl-C: drain and exit 0.
    Stop,
    /// SIGHUP: reload the configuration file.
    Reload,
}

/// Ctrl-C, SIGTERM and SIGHUP, installed before any listener is bound: a signal that arrives
/// as soon as the port accepts connections must already mean "drain and exit 0" (or
/// "reload"), not the default action of killing the process.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal.
    async fn wait(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => Signal::Stop,
                _ = next(&mut self.int) => Signal::Stop,
                _ = next(&mut self.hup) => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
