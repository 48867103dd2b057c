//! The `rampart` command: run the proxy, or check a configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rampart::config::{self, ConfigErrors, Loaded};
use rampart::listen::Server;
use rampart::observe::{AccessLog, Metrics};
use rampart::signals::{Signal, Signals};

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
        #[command(flatten)]
        overrides: Overrides,
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
    /// The edge cache of a running rampart (asked through its admin listener).
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Tokens for the management API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new token, and the `[[api_token]]` lines (with only its SHA-256) to add to the
    /// configuration.
    Create {
        /// Who holds the token (shown in the logs).
        #[arg(long)]
        name: String,
        /// A scope it gets (repeat for more): zone:read, zone:edit, firewall:read,
        /// firewall:edit, cache:purge, analytics:read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// A zone it may act on (repeat for more); every zone without.
        #[arg(long = "zone")]
        zones: Vec<String>,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Remove objects from the cache, from the next request on (exactly one kind of purge).
    Purge {
        /// The configuration rampart runs with (its admin_listen is asked).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The zone whose objects are purged.
        #[arg(long)]
        zone: String,
        #[command(flatten)]
        what: PurgeWhat,
    },
}

/// What `rampart cache purge` removes.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct PurgeWhat {
    /// Everything the zone has cached.
    #[arg(long)]
    everything: bool,
    /// One URL, e.g. https://example.com/app.css?v=2 (repeat for more).
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// Every URL that starts with HOST/PATH, e.g. example.com/static/ (repeat for more).
    #[arg(long = "prefix", value_name = "HOST/PATH")]
    prefixes: Vec<String>,
    /// Every object of a host (repeat for more).
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Every object the origin tagged with TAG in Cache-Tag (repeat for more).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
}

impl PurgeWhat {
    /// The body of Cloudflare's purge_cache request.
    fn json(&self) -> serde_json::Value {
        if self.everything {
            return serde_json::json!({"purge_everything": true});
        }
        let (kind, items) = [
            ("files", &self.urls),
            ("prefixes", &self.prefixes),
            ("hosts", &self.hosts),
            ("tags", &self.tags),
        ]
        .into_iter()
        .find(|(_, items)| !items.is_empty())
        .unwrap_or(("files", &self.urls));
        serde_json::json!({ kind: items })
    }
}

fn cache_purge(config: Option<&std::path::Path>, zone: &str, what: &PurgeWhat) -> ExitCode {
    let result = rampart::admin::client::admin_address(config).and_then(|addr| {
        rampart::admin::client::post(
            addr,
            &format!("/client/v4/zones/{zone}/purge_cache"),
            &what.json(),
        )
    });
    match result {
        Ok(r) => {
            println!("purged {} objects of zone {zone}", r["purged"]);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn token_create(name: &str, scopes: &[String], zones: &[String]) -> ExitCode {
    use rampart::config::api::SCOPES;
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.iter().any(|(n, _)| n == s)) {
        let known: Vec<&str> = SCOPES.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "error: unknown scope `{bad}`; the scopes are {}",
            known.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let token = match rampart::admin::auth::new_token() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hash = rampart::text::hex(&rampart::admin::auth::sha256(token.as_bytes()));
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let zones = if zones.is_empty() {
        "\"*\"".to_string()
    } else {
        quoted(zones)
    };
    eprintln!("The token (shown once: rampart keeps only its SHA-256):");
    println!("{token}");
    eprintln!("\nAdd to the configuration, then reload (SIGHUP):\n");
    println!(
        "\n[[api_token]]\nname = {name:?}\nsha256 = \"{hash}\"\nscopes = [{}]\nzones = [{zones}]",
        quoted(scopes)
    );
    ExitCode::SUCCESS
}

/// What `rampart run` may change of the configuration it runs, for a first run or a test.
#[derive(clap::Args)]
struct Overrides {
    /// Accept HTTP on ADDR instead of the configuration's `server.listen` (repeat for more).
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<std::net::SocketAddr>,
    /// Serve /metrics on ADDR instead of `server.admin_listen`; `off` serves no metrics.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_admin_listen)]
    admin_listen: Option<AdminListen>,
    /// Accept TLS on ADDR instead of the configuration's `server.tls_listen` (repeat for more).
    #[arg(long = "tls-listen", value_name = "ADDR")]
    tls_listen: Vec<std::net::SocketAddr>,
    /// HTTPS for local use: a self-signed certificate for the zones' hosts (written to
    /// certs/, never for production), served on 127.0.0.1:8443 unless `tls_listen` is set.
    #[arg(long)]
    tls_dev: bool,
}

/// `--admin-listen`: an address, or off.
#[derive(Clone, Copy)]
struct AdminListen(Option<std::net::SocketAddr>);

fn parse_admin_listen(s: &str) -> Result<AdminListen, String> {
    if s == "off" {
        return Ok(AdminListen(None));
    }
    s.parse()
        .map(|a| AdminListen(Some(a)))
        .map_err(|e| format!("`{s}` is not an address like 127.0.0.1:9191, nor `off`: {e}"))
}

impl Overrides {
    /// Applies the flags to `config`; an error says what could not be done.
    fn apply(&self, config: &mut config::Config) -> Result<(), String> {
        if !self.listen.is_empty() {
            config.server.listen = self.listen.clone();
        }
        if !self.tls_listen.is_empty() {
            config.server.tls_listen = self.tls_listen.clone();
        }
        if let Some(AdminListen(a)) = self.admin_listen {
            config.server.admin_listen = a;
        }
        if self.tls_dev {
            let mut hosts: Vec<String> = config
                .zones
                .iter()
                .flat_map(|z| z.hosts.iter().map(|h| h.to_string()))
                .collect();
            hosts.dedup();
            let (cert, key) = rampart::tls::write_dev_certificate(&hosts, "certs".as_ref())?;
            config.server.default_certificate = Some(rampart::tls::ServerCert::load(&cert, &key)?);
            if config.server.tls_listen.is_empty() {
                config.server.tls_listen = vec![([127, 0, 0, 1], 8443).into()];
            }
            tracing::info!(
                "--tls-dev: a self-signed certificate for {} in {} (try curl --cacert {} https://{}:{}/)",
                hosts.join(", "),
                cert.display(),
                cert.display(),
                hosts.first().map_or("localhost", String::as_str),
                config.server.tls_listen[0].port()
            );
        }
        Ok(())
    }
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
        /// A configuration whose `[[list]]`s the expression may name.
        #[arg(short, long)]
        config: Option<PathBuf>,
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
        /// A configuration whose `[[list]]`s the expression may name.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}

/// Whether the error log is coloured: only when stderr is a terminal and `NO_COLOR` is not set.
fn use_colour() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal; a file or a pipe gets plain text (NO_COLOR is
        // honoured too).
        .with_ansi(use_colour())
        .init();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config, overrides } => run(config, &overrides),
        Command::Cache {
            command: CacheCommand::Purge { config, zone, what },
        } => cache_purge(config.as_deref(), &zone, &what),
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    scopes,
                    zones,
                },
        } => token_create(&name, &scopes, &zones),
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
            command: RulesCommand::Check { expression, config },
        } => match rampart::rules_cli::lists(config.as_deref())
            .and_then(|lists| rampart::rules_cli::check(&expression, &lists))
        {
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
                    config,
                },
        } => {
            let result = rampart::rules_cli::lists(config.as_deref()).and_then(|lists| {
                let raw = rampart::rules_cli::read_request(&request)?;
                rampart::rules_cli::test(&expression, &raw, client_ip, &lists)
            });
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

fn run(path: Option<PathBuf>, overrides: &Overrides) -> ExitCode {
    let loaded = match &path {
        Some(p) => config::load_file(p),
        None => config::load_str(config::EMBEDDED_NAME, config::EMBEDDED_DEFAULT, None),
    };
    let Loaded {
        mut config,
        warnings,
    } = match loaded {
        Ok(l) => l,
        Err(e) => {
            report(&e);
            return ExitCode::FAILURE;
        }
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if let Err(e) = overrides.apply(&mut config) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
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
/// SIGINT; SIGHUP reloads `path` and reopens the access log, SIGUSR1 only reopens it.
async fn serve(mut config: config::Config, path: Option<PathBuf>) -> ExitCode {
    let signals = Signals::install();
    if path.is_none() {
        match rampart::demo::start().await {
            Ok(addr) => {
                let origin = config::OriginAddr::parse(&format!("http://{addr}"))
                    .expect("a socket address is a valid origin");
                config.zones[0].origins = config::origins::Origins::single(origin);
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
    loop {
        match signals.wait().await {
            Signal::Stop => break,
            Signal::Reload => {
                reload(path.as_deref(), &server);
                log_at_exit.reopen();
            }
            Signal::ReopenLogs => log_at_exit.reopen(),
        }
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
