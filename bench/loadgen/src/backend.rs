//! The benchmark's upstream: a hyper HTTP/1.1 server on one thread that answers every
//! request `200 hello`. It is the same process for every participant, costs less per
//! request than any proxy in front of it, and stops on its own after `max_seconds`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub struct BackendArgs {
    pub listen: SocketAddr,
    pub addr_file: Option<PathBuf>,
    pub body: String,
    pub max_seconds: u64,
}

pub async fn run(args: BackendArgs) -> Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    let local = listener.local_addr()?;
    if let Some(path) = &args.addr_file {
        // Written whole under a temporary name so a reader never sees half an address.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, local.to_string())?;
        std::fs::rename(&tmp, path)?;
    }
    let serve = accept_loop(listener, Bytes::from(args.body));
    match tokio::time::timeout(Duration::from_secs(args.max_seconds), serve).await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

async fn accept_loop(listener: TcpListener, body: Bytes) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let mut response = Response::new(Full::new(body.clone()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain"),
                );
                async move { Ok::<_, Infallible>(response) }
            });
            // A client closing mid-request is normal under load; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
