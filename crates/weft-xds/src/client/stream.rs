//! The part of the client's xDS stream both protocols share: queueing the first
//! subscriptions, opening the call, answering each response, and re-sending subscriptions
//! when the caller changes them. What goes in the requests is the protocol's (`sotw`,
//! `delta`).

use std::collections::BTreeMap;
use std::future::Future;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use super::state::{Driver, StreamEnd, stop_requested};

use super::Service;

/// The generated client of the stream's service.
pub(super) enum Client {
    Aggregated(AggregatedDiscoveryServiceClient<Channel>),
    Secrets(SecretDiscoveryServiceClient<Channel>),
}

impl Client {
    fn new(service: Service, channel: Channel) -> Self {
        // Envoy accepts responses of any size; so does this client.
        match service {
            Service::Aggregated => Self::Aggregated(
                AggregatedDiscoveryServiceClient::new(channel)
                    .max_decoding_message_size(usize::MAX),
            ),
            Service::Secrets => Self::Secrets(
                SecretDiscoveryServiceClient::new(channel).max_decoding_message_size(usize::MAX),
            ),
        }
    }
}

/// One ADS protocol variant, as the stream driver needs it.
pub(super) trait Protocol {
    type Request: Send + 'static;
    type Response: Send + 'static;
    /// What the stream last asked for, per type.
    type Sent: Send;

    fn open(
        client: &mut Client,
        requests: UnboundedReceiverStream<Self::Request>,
    ) -> impl Future<Output = Result<Streaming<Self::Response>, tonic::Status>> + Send;

    /// Sends a request for every type whose subscription differs from what was last asked.
    fn send_subscriptions(
        driver: &Driver,
        sent: &mut BTreeMap<String, Self::Sent>,
        node: &mut Option<Node>,
        tx: &mpsc::UnboundedSender<Self::Request>,
    );

    /// Offers a response to the handler; returns the ACK or NACK to send.
    fn on_response(
        driver: &mut Driver,
        sent: &BTreeMap<String, Self::Sent>,
        response: Self::Response,
    ) -> Option<Self::Request>;
}

pub(super) async fn run<P: Protocol>(driver: &mut Driver, channel: Channel) -> StreamEnd {
    let (tx, rx) = mpsc::unbounded_channel();
    driver.sync_desired();
    driver.begin_stream();
    let mut sent: BTreeMap<String, P::Sent> = BTreeMap::new();
    let mut node = Some(driver.config.node.clone());
    // Queued before the call so servers that wait for the first request still answer.
    P::send_subscriptions(driver, &mut sent, &mut node, &tx);

    let mut client = Client::new(driver.config.service, channel);
    let mut inbound = tokio::select! {
        r = P::open(&mut client, UnboundedReceiverStream::new(rx)) => match r {
            Ok(inbound) => inbound,
            Err(status) => {
                return StreamEnd::failed(format!("open stream: {}", said(&status)), false);
            }
        },
        _ = stop_requested(&mut driver.shutdown) => return StreamEnd::shutdown(),
    };
    driver.set_connected();
    let mut got_response = false;
    loop {
        tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(response)) => {
                    got_response = true;
                    if let Some(request) = P::on_response(driver, &sent, response) {
                        let _ = tx.send(request);
                    }
                }
                Ok(None) => return StreamEnd::failed("server closed the stream", got_response),
                Err(status) => return StreamEnd::failed(said(&status), got_response),
            },
            changed = driver.desired.changed() => {
                if changed.is_err() {
                    return StreamEnd::shutdown();
                }
                driver.sync_desired();
                P::send_subscriptions(driver, &mut sent, &mut node, &tx);
            }
            _ = stop_requested(&mut driver.shutdown) => return StreamEnd::shutdown(),
        }
    }
}

/// A server's gRPC status as the log shows it: the code's number (what Envoy logs) and name,
/// then the server's message as sent.
fn said(status: &tonic::Status) -> String {
    let code = status.code();
    format!("{} ({code:?}): {}", code as i32, status.message())
}
