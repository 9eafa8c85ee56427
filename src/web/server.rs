//! Serving the routes: one accept loop per listener (plain or TLS), each connection served by
//! hyper (HTTP/1.1) with warp's filter as the service. Each request carries its [`Peer`]
//! (client address, whether it came over TLS). Stopping aborts the loops and every open
//! connection (server-sent event streams included), so nothing the routes hold — the alarm
//! handle above all — outlives [`Listeners::stop`].
//!
//! Idle and slow clients cannot hold the console: at most [`MAX_CONNECTIONS`] connections,
//! [`MAX_CONNECTIONS_PER_CLIENT`] per client (address, or IPv6 /64); a TLS handshake not done
//! in [`HANDSHAKE_TIMEOUT`] and a request head not read in [`HEADER_TIMEOUT`] (also the
//! longest a kept-alive connection may sit idle) end the connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::connection_limit::{ConnectionLimit, Refusal};

/// Connections open at once, in all (file descriptors stay for the alarm's own links).
pub const MAX_CONNECTIONS: usize = 256;
/// Connections open at once from one client (a browser opens about six).
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 32;
/// A TLS handshake not finished by then ends the connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request head not read by then ends the connection (hyper's timeout, with a timer set).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Who sent a request and how.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// Came over HTTPS (cookies are `Secure`, HSTS is sent).
    pub tls: bool,
}

/// The running accept loops and their connections.
#[derive(Clone)]
pub struct Listeners {
    tasks: Arc<Mutex<JoinSet<()>>>,
    limit: ConnectionLimit,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            tasks: Arc::default(),
            limit: ConnectionLimit::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT),
        }
    }
}

impl Listeners {
    /// Serves `routes` on `listener`, over TLS when `tls` is given.
    pub fn serve(
        &self,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        routes: BoxedFilter<(Response,)>,
    ) {
        let connections = self.clone();
        self.spawn(async move {
            loop {
                let (stream, addr) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "console: cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let slot = match connections.limit.admit(addr.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        refused(addr, refusal);
                        continue;
                    }
                };
                let routes = routes.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    let peer = Peer {
                        addr,
                        tls: tls.is_some(),
                    };
                    match tls {
                        Some(acceptor) => {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(stream)) => {
                                    serve_connection(TokioIo::new(stream), peer, routes).await
                                }
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "console: TLS handshake failed")
                                }
                                Err(_) => tracing::debug!(
                                    client = %addr,
                                    "console: TLS handshake not finished in time; closed"
                                ),
                            }
                        }
                        None => serve_connection(TokioIo::new(stream), peer, routes).await,
                    }
                });
            }
        });
    }

    /// Answers every plain-HTTP request on `listener` with a redirect to `https_port`.
    pub fn redirect(&self, listener: TcpListener, https_port: u16) {
        use warp::{Filter, Reply};
        let query = warp::query::raw()
            .map(|q: String| format!("?{q}"))
            .or(warp::any().map(String::new))
            .unify();
        let routes = warp::path::full()
            .and(query)
            .and(warp::header::optional::<String>("host"))
            .map(
                move |path: warp::path::FullPath, query: String, host: Option<String>| {
                    let host = host.unwrap_or_else(|| "beacon.local".into());
                    let name = host_without_port(&host);
                    let port = if https_port == 443 {
                        String::new()
                    } else {
                        format!(":{https_port}")
                    };
                    let location = format!("https://{name}{port}{}{query}", path.as_str());
                    let mut response = warp::reply().into_response();
                    *response.status_mut() = warp::http::StatusCode::PERMANENT_REDIRECT;
                    if let Ok(value) = warp::http::HeaderValue::from_str(&location) {
                        response
                            .headers_mut()
                            .insert(warp::http::header::LOCATION, value);
                    }
                    response
                },
            )
            .boxed();
        self.serve(listener, None, routes);
    }

    /// Aborts the loops and every connection, and waits until they are gone.
    pub async fn stop(&self) {
        // Twice: a connection accepted while the first set was being taken lands in the new one.
        for _ in 0..2 {
            let mut tasks = std::mem::take(&mut *self.lock());
            tasks.shutdown().await;
        }
    }

    /// Runs `task` until [`Listeners::stop`] (as the connections do).
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut tasks = self.lock();
        // Reap finished connections so the set does not grow with every one ever served.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn serve_connection<I>(io: I, peer: Peer, routes: BoxedFilter<(Response,)>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = warp::service(routes);
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(peer);
            let mut service = service.clone();
            async move {
                let response = tower_service::Service::call(&mut service, request).await;
                Ok::<Response, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    if let Err(e) = builder.serve_connection(io, service).await {
        tracing::debug!(error = %e, "console: connection ended with an error");
    }
}

/// Logs a refused connection: a client over its share at debug level (a flood must not flood
/// the journal), the console full as a warning.
fn refused(addr: SocketAddr, refusal: Refusal) {
    match refusal {
        Refusal::ClientFull(_) => {
            tracing::debug!(client = %addr, reason = %refusal, "console: connection refused")
        }
        Refusal::Full(_) => {
            tracing::warn!(client = %addr, reason = %refusal, "console: connection refused")
        }
    }
}

/// `host` of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`) without the port.
fn host_without_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(at)
            if !host[at + 1..].is_empty()
                && host[at + 1..].bytes().all(|b| b.is_ascii_digit())
                && (!host.starts_with('[') || host[..at].ends_with(']')) =>
        {
            &host[..at]
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::host_without_port;

    #[test]
    fn the_port_is_dropped_from_every_host_form() {
        assert_eq!(host_without_port("beacon.local:80"), "beacon.local");
        assert_eq!(host_without_port("beacon.local"), "beacon.local");
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port("10.0.0.5:80"), "10.0.0.5");
    }
}
