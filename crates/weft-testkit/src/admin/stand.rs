//! One echo backend plus one [`ManagedProxy`] on a rendered bootstrap template: the unit every
//! admin and lifecycle test starts, once per proxy under test, so Envoy and weft see the same
//! text apart from the ports.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::process::ManagedProxy;
use crate::template::{self, Rendered};
use crate::{EchoServer, Error, ProxyBinary, ports};

/// Starts tried: a proxy that exits at once most likely lost a port race with another process
/// between allocation and bind, so the template is rendered anew with fresh ports.
const START_ATTEMPTS: usize = 3;

/// The backend, the rendered bootstrap and the proxy running it.
#[derive(Debug)]
pub struct Stand {
    pub backend: EchoServer,
    pub rendered: Rendered,
    pub proxy: ManagedProxy,
}

impl Stand {
    /// Starts an HTTP echo named `backend` (the template refers to it as
    /// `{{backend:NAME}}`) and `binary` on the rendered `template`.
    pub async fn start(binary: &ProxyBinary, template: &str, backend: &str) -> Result<Self, Error> {
        let echo = EchoServer::http(backend).await?;
        let ports = BTreeMap::from([(backend.to_string(), echo.port())]);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let rendered = template::render(template, &ports)?;
            let admin = ports::loopback(rendered.admin_port);
            match ManagedProxy::start(binary, &rendered.text, admin).await {
                Ok(proxy) => {
                    return Ok(Self {
                        backend: echo,
                        rendered,
                        proxy,
                    });
                }
                Err(Error::ProxyExited { log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("ddress already in use") => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The `{{listener_port}}` listener's address.
    pub fn listener(&self) -> Result<SocketAddr, Error> {
        Ok(ports::loopback(self.rendered.port("listener")?))
    }

    pub fn admin(&self) -> SocketAddr {
        self.proxy.admin()
    }
}
