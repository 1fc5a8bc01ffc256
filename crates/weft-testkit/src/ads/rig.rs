//! One proxy under an ADS scenario: echo backends, the control plane, and the proxy booted
//! from [`bootstrap`] with a node id of its own; plus [`run_peers`], which runs a scenario
//! on each proxy in turn and compares their transcripts.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use weft_xds::server::Snapshot;

use super::transcript::{Run, compare};
use super::{AdsMode, AdsProxy, ControlPlane, Transcript, bootstrap};
use crate::echo::EchoServer;
use crate::{Error, ProxyBinary, ProxyKind, ports};

/// Echo backends every rig starts; scenarios move routes and endpoints between them.
pub const BACKENDS: [&str; 3] = ["a", "b", "c"];

/// A scenario's world for one proxy.
#[derive(Debug)]
pub struct AdsRig {
    pub mode: AdsMode,
    /// This proxy's node id, unique per proxy and run.
    pub node: String,
    binary: ProxyBinary,
    control: Option<ControlPlane>,
    control_addr: SocketAddr,
    backends: BTreeMap<String, EchoServer>,
    listeners: BTreeMap<String, u16>,
    proxy: Option<AdsProxy>,
}

impl AdsRig {
    /// Backends and a control plane with no snapshot; the proxy is started separately so a
    /// scenario can watch it come up.
    pub async fn new(binary: &ProxyBinary, mode: AdsMode, scenario: &str) -> Result<Self, Error> {
        let mut backends = BTreeMap::new();
        for name in BACKENDS {
            backends.insert(name.to_string(), EchoServer::http(name).await?);
        }
        let control = ControlPlane::start().await?;
        Ok(Self {
            mode,
            node: format!("{}-{scenario}-{mode}-{}", binary.kind, std::process::id()),
            binary: binary.clone(),
            control_addr: control.addr(),
            control: Some(control),
            backends,
            listeners: BTreeMap::new(),
            proxy: None,
        })
    }

    pub fn kind(&self) -> ProxyKind {
        self.binary.kind
    }

    /// The running control plane (`Err` while stopped).
    pub fn control(&self) -> Result<&ControlPlane, Error> {
        self.control
            .as_ref()
            .ok_or_else(|| Error::Conformance("the control plane is stopped".into()))
    }

    pub fn backend_port(&self, name: &str) -> Result<u16, Error> {
        self.backends
            .get(name)
            .map(EchoServer::port)
            .ok_or_else(|| Error::Conformance(format!("no backend named {name:?}")))
    }

    pub fn served(&self, name: &str) -> Result<u64, Error> {
        self.backends
            .get(name)
            .map(EchoServer::served)
            .ok_or_else(|| Error::Conformance(format!("no backend named {name:?}")))
    }

    /// The port for listener `name`: a fresh free port on first use, the same one after.
    pub fn listener_port(&mut self, name: &str) -> Result<u16, Error> {
        if let Some(p) = self.listeners.get(name) {
            return Ok(*p);
        }
        let p = ports::free_port()?;
        self.listeners.insert(name.to_string(), p);
        Ok(p)
    }

    pub fn listener_addr(&mut self, name: &str) -> Result<SocketAddr, Error> {
        Ok(ports::loopback(self.listener_port(name)?))
    }

    /// The bootstrap this rig's proxy gets.
    pub fn bootstrap(&self) -> String {
        bootstrap(&self.node, self.mode, self.control_addr.port())
    }

    /// Starts the proxy; does not wait for it to be ready.
    pub async fn start_proxy(&mut self) -> Result<&mut AdsProxy, Error> {
        let proxy = AdsProxy::start(&self.binary, &self.bootstrap()).await?;
        Ok(self.proxy.insert(proxy))
    }

    pub fn proxy(&mut self) -> Result<&mut AdsProxy, Error> {
        self.proxy
            .as_mut()
            .ok_or_else(|| Error::Conformance("the proxy was not started".into()))
    }

    /// Stops the control plane; returns the snapshot it served.
    pub async fn stop_control(&mut self) -> Result<Option<Snapshot>, Error> {
        let control = self
            .control
            .take()
            .ok_or_else(|| Error::Conformance("the control plane is already stopped".into()))?;
        let snapshot = control.server().snapshot().map(|s| (*s).clone());
        control.stop().await?;
        Ok(snapshot)
    }

    /// Starts a new control plane on the port the stopped one used.
    pub async fn start_control(&mut self, snapshot: Option<Snapshot>) -> Result<(), Error> {
        if self.control.is_some() {
            return Err(Error::Conformance("the control plane is running".into()));
        }
        self.control = Some(ControlPlane::start_on(self.control_addr, snapshot).await?);
        Ok(())
    }

    /// The proxy's log tail, or why there is none.
    pub fn log_tail(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| "(proxy not started)".into(), AdsProxy::log_tail)
    }
}

/// Runs `scenario` on a fresh rig for each proxy in `peers`, then compares the transcripts
/// ([`compare`]). Prints every transcript (shown with `--nocapture` or on failure).
pub async fn run_peers(
    peers: &[ProxyBinary],
    mode: AdsMode,
    name: &str,
    scenario: impl AsyncFn(&mut AdsRig, &mut Transcript) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut runs = Vec::new();
    for binary in peers {
        let mut transcript = Transcript::default();
        let result = match AdsRig::new(binary, mode, name).await {
            Ok(mut rig) => {
                let result = scenario(&mut rig, &mut transcript).await;
                result.map_err(|e| {
                    Error::Conformance(format!(
                        "{e}\n---- {} log tail ----\n{}",
                        binary.kind,
                        rig.log_tail()
                    ))
                })
            }
            Err(e) => Err(e),
        };
        runs.push(Run {
            kind: binary.kind,
            transcript,
            result,
        });
    }
    let summary = compare(&format!("{name} ({mode})"), &runs)?;
    println!("{summary}");
    Ok(())
}
