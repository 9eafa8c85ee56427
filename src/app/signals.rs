//! The stop signals of a process run by systemd or from a terminal.

/// SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the future is
/// first polled: a stop requested while `beacon run` is still starting is kept and acted on
/// once it has started, instead of killing the process the default way (no clean shutdown).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                (Ok(mut term), Err(_)) => {
                    term.recv().await;
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
