//! The signals a running rampart answers: SIGTERM and Ctrl-C stop it (in-flight requests
//! finish first), SIGHUP reloads the configuration and reopens the access log, SIGUSR1 only
//! reopens the access log (after logrotate has moved it, as for nginx).

/// What a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or Ctrl-C: drain and exit 0.
    Stop,
    /// SIGHUP: reload the configuration file (and reopen the access log).
    Reload,
    /// SIGUSR1: reopen the access log file.
    ReopenLogs,
}

/// The handlers, installed before any listener is bound: a signal that arrives as soon as
/// the port accepts connections must already mean "drain and exit 0" (or "reload"), not the
/// default action of killing the process.
pub struct Signals {
    #[cfg(unix)]
    handlers: Vec<(Option<tokio::signal::unix::Signal>, Signal)>,
}

impl Signals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = [
                (SignalKind::terminate(), Signal::Stop),
                (SignalKind::interrupt(), Signal::Stop),
                (SignalKind::hangup(), Signal::Reload),
                (SignalKind::user_defined1(), Signal::ReopenLogs),
            ];
            Signals {
                handlers: kinds
                    .into_iter()
                    .map(|(kind, meaning)| (signal(kind).ok(), meaning))
                    .collect(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal.
    pub async fn wait(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let waits = self.handlers.iter_mut().map(|(handler, meaning)| {
                Box::pin(async move {
                    match handler {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                    *meaning
                })
            });
            futures_util::future::select_all(waits).await.0
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
