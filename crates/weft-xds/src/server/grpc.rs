//! ADS over gRPC without tonic's response codec. A response goes out as the byte slices it
//! was assembled from — a small head, then resources a layer encoded once for every stream
//! that sends it — so pushing one namespace's clusters to a thousand sidecars copies none
//! of them, and no stream keeps an encode buffer as large as its largest response (tonic's
//! keeps one per stream for the stream's life). Requests are decoded here too, into a
//! buffer dropped once empty: an ACK naming two thousand EDS clusters is 100 KB, and a
//! thousand streams each keeping a buffer that size was a tenth of a gigabyte.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use tokio::sync::mpsc;
use tonic::Status;

use super::http2::inbox::{End, Inbox};
use super::stream::{self, Protocol};
use super::{MAX_REQUEST_BYTES, RESPONSE_QUEUE, Shared, delta, sotw};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
/// SDS's own service, which proxies use to reach a secret agent (Envoy's `sds-grpc`
/// cluster, with `api_type: GRPC`): the same messages as ADS, for secrets alone.
const SDS_SOTW_PATH: &str = "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets";
const SDS_DELTA_PATH: &str = "/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets";

/// One length-prefixed gRPC message, as the slices it is sent in.
#[derive(Debug)]
pub struct Encoded {
    parts: Vec<Bytes>,
}

impl Encoded {
    /// `head`'s fields followed by `rest`, already-encoded fields of the same message
    /// (protobuf readers take fields in any order and concatenate repeated ones).
    pub fn from_parts(head: &impl prost::Message, rest: Vec<Bytes>) -> Self {
        let head_len = head.encoded_len();
        let len = head_len + rest.iter().map(Bytes::len).sum::<usize>();
        let mut first = BytesMut::with_capacity(5 + head_len);
        first.put_u8(0); // not compressed
        first.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        // Writing into a growable buffer cannot fail.
        let _ = head.encode(&mut first);
        let mut parts = Vec::with_capacity(1 + rest.len());
        parts.push(first.freeze());
        parts.extend(rest.into_iter().filter(|b| !b.is_empty()));
        Self { parts }
    }

    /// A message already encoded (a unary method's answer): all of it goes as `rest`
    /// after an empty head.
    pub fn raw(message: Bytes) -> Self {
        Self::from_parts(&(), vec![message])
    }

    /// A whole message, encoded into its own buffer (freed once it is written).
    #[cfg(test)]
    pub fn message(message: &impl prost::Message) -> Self {
        Self::from_parts(message, Vec::new())
    }

    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }

    /// The slices to send, in order.
    pub(super) fn into_parts(self) -> Vec<Bytes> {
        self.parts
    }
}

/// What a stream task hands the response body: a message, or the status to end with.
pub(super) type Outgoing = Result<Encoded, Status>;

/// The trailers ending a stream with `status`.
pub(super) fn trailers(status: &Status) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    if let Err(bad) = status.add_header(&mut trailers) {
        // A message that cannot be a header value: keep the code, drop the text.
        trailers = http::HeaderMap::new();
        let _ = Status::new(bad.code(), "").add_header(&mut trailers);
    }
    trailers
}

/// The request side of a stream: length-prefixed messages from the request body.
pub(super) struct Requests<M> {
    inbox: Arc<Inbox>,
    buf: BytesMut,
    ended: bool,
    _message: std::marker::PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> Requests<M> {
    /// The next request; `None` once the client has half-closed between messages.
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
        match self.raw().await? {
            Some(message) => M::decode(message)
                .map(Some)
                .map_err(|e| Status::internal(format!("undecodable request: {e}"))),
            None => Ok(None),
        }
    }
}

impl<M> Requests<M> {
    fn new(inbox: Arc<Inbox>) -> Self {
        Self {
            inbox,
            buf: BytesMut::new(),
            ended: false,
            _message: std::marker::PhantomData,
        }
    }

    /// The next request message's bytes; `None` once the client has half-closed between
    /// messages.
    async fn raw(&mut self) -> Result<Option<BytesMut>, Status> {
        loop {
            if self.buf.len() >= 5 {
                if self.buf[0] != 0 {
                    return Err(Status::unimplemented(
                        "compressed requests are not supported",
                    ));
                }
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if len > MAX_REQUEST_BYTES {
                    return Err(Status::resource_exhausted(format!(
                        "request of {len} bytes exceeds the limit of {MAX_REQUEST_BYTES}"
                    )));
                }
                if self.buf.len() >= 5 + len {
                    self.buf.advance(5);
                    let message = self.buf.split_to(len);
                    if self.buf.is_empty() {
                        // Its allocation goes with `message`, instead of staying this
                        // stream's for good.
                        self.buf = BytesMut::new();
                    }
                    return Ok(Some(message));
                }
                self.buf.reserve(5 + len - self.buf.len());
            }
            if self.ended {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Status::internal("request stream ended inside a message"))
                };
            }
            match std::future::poll_fn(|cx| self.inbox.poll_chunk(cx)).await {
                Ok(data) => self.buf.extend_from_slice(&data),
                Err(End::Finished) => self.ended = true,
                Err(End::Reset) => return Err(Status::cancelled("the client reset the stream")),
            }
        }
    }
}

/// What a request's headers say about the call it opens.
pub(super) struct Call<'a> {
    pub path: &'a [u8],
    pub encoding: Option<&'a [u8]>,
    pub authorization: Option<Vec<u8>>,
    pub peer: &'a Arc<super::Peer>,
}

/// Opens the stream a request calls for — an ADS (or SDS) stream, or a unary method the
/// server was given: starts its task (see `stream::run`, `unary`) fed from `inbox`, and
/// returns where its responses come from; an error is the status to answer with at once.
pub(super) fn open(
    shared: &Arc<Shared>,
    call: Call<'_>,
    inbox: Arc<Inbox>,
) -> Result<mpsc::Receiver<Outgoing>, Status> {
    let path = call.path;
    if let Some(encoding) = call.encoding
        && encoding != b"identity"
    {
        return Err(Status::unimplemented(format!(
            "request compression {:?} is not supported",
            String::from_utf8_lossy(encoding)
        )));
    }
    if let Some((name, method)) = shared.unary.iter().find(|(p, _)| p.as_bytes() == path) {
        if !call.peer.confidential {
            return Err(Status::permission_denied(format!(
                "{name} is served over TLS only: its requests carry credentials"
            )));
        }
        let authorization = call
            .authorization
            .map(|a| String::from_utf8_lossy(&a).into_owned());
        return Ok(unary(method.clone(), authorization, inbox));
    }
    let sotw = path == SOTW_PATH.as_bytes() || path == SDS_SOTW_PATH.as_bytes();
    if !sotw && path != DELTA_PATH.as_bytes() && path != SDS_DELTA_PATH.as_bytes() {
        return Err(Status::unimplemented(format!(
            "no method {}",
            String::from_utf8_lossy(path)
        )));
    }
    let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
    let stream_id = shared.next_stream.fetch_add(1, Ordering::Relaxed);
    if sotw {
        spawn::<sotw::TypeState, DiscoveryRequest>(shared, stream_id, call.peer, inbox, tx);
    } else {
        spawn::<delta::TypeState, DeltaDiscoveryRequest>(shared, stream_id, call.peer, inbox, tx);
    }
    Ok(rx)
}

/// A unary call: exactly one request message, then `method`'s answer.
fn unary(
    method: Arc<dyn super::unary::Unary>,
    authorization: Option<String>,
    inbox: Arc<Inbox>,
) -> mpsc::Receiver<Outgoing> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut requests = Requests::<()>::new(inbox);
        let answer = async {
            let Some(request) = requests.raw().await? else {
                return Err(Status::invalid_argument("a unary call without a request"));
            };
            if requests.raw().await?.is_some() {
                return Err(Status::invalid_argument(
                    "a unary call with more than one request",
                ));
            }
            method.call(request.freeze(), authorization).await
        };
        let _ = tx.send(answer.await.map(Encoded::raw)).await;
    });
    rx
}

fn spawn<T, Req>(
    shared: &Arc<Shared>,
    stream_id: u64,
    peer: &Arc<super::Peer>,
    inbox: Arc<Inbox>,
    tx: mpsc::Sender<Outgoing>,
) where
    Req: prost::Message + Default + Send + 'static,
    stream::Stream<T>: Protocol<Request = Req> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(stream::run::<T>(
        shared.clone(),
        stream_id,
        peer.clone(),
        Requests::new(inbox),
        tx,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
    use envoy_types::pb::google::protobuf::Any;
    use prost::Message;

    fn requests(chunks: Vec<Vec<u8>>) -> Requests<DiscoveryRequest> {
        Requests::new(Inbox::finished(chunks.into_iter().map(Bytes::from)))
    }

    fn framed(m: &DiscoveryRequest) -> Vec<u8> {
        Encoded::message(m).to_vec()
    }

    #[test]
    fn an_idle_stream_task_holds_no_request_or_its_work() {
        // A thousand sidecars' streams are mostly idle: what a request or a push needs
        // while it runs is boxed apart from the task (3.5 KB inline before).
        let server = crate::server::AdsServer::new();
        let (tx, _rx) = mpsc::channel(1);
        let sotw = stream::run::<sotw::TypeState>(
            server.shared.clone(),
            1,
            Arc::new(crate::server::Peer::default()),
            Requests::new(Inbox::finished([])),
            tx.clone(),
        );
        let delta = stream::run::<delta::TypeState>(
            server.shared.clone(),
            2,
            Arc::new(crate::server::Peer::default()),
            Requests::new(Inbox::finished([])),
            tx,
        );
        for (protocol, size) in [
            ("sotw", std::mem::size_of_val(&sotw)),
            ("delta", std::mem::size_of_val(&delta)),
        ] {
            assert!(size <= 1024, "{protocol} stream task: {size} bytes");
        }
    }

    #[tokio::test]
    async fn requests_are_read_across_chunk_boundaries() {
        let a = DiscoveryRequest {
            type_url: "a".into(),
            resource_names: (0..500).map(|i| format!("name-{i}")).collect(),
            ..Default::default()
        };
        let b = DiscoveryRequest {
            type_url: "b".into(),
            ..Default::default()
        };
        let mut wire = framed(&a);
        wire.extend(framed(&b));
        let chunks = vec![
            wire[..3].to_vec(),
            wire[3..4000].to_vec(),
            wire[4000..].to_vec(),
        ];
        let mut r = requests(chunks);
        assert_eq!(r.message().await.unwrap(), Some(a));
        assert_eq!(r.message().await.unwrap(), Some(b));
        assert_eq!(r.message().await.unwrap(), None);
        // Nothing is kept once the stream is between messages.
        assert_eq!(r.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn truncated_or_compressed_requests_end_the_stream() {
        let m = DiscoveryRequest {
            type_url: "a".into(),
            ..Default::default()
        };
        let mut wire = framed(&m);
        wire.pop();
        let err = requests(vec![wire]).message().await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
        let mut wire = framed(&m);
        wire[0] = 1;
        let err = requests(vec![wire]).message().await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
    }

    #[test]
    fn a_message_in_parts_decodes_as_the_whole() {
        let any = |n: u8| Any {
            type_url: "t".into(),
            value: vec![n; 3],
        };
        let head = DiscoveryResponse {
            version_info: "7".into(),
            type_url: "t".into(),
            nonce: "n".into(),
            ..Default::default()
        };
        let mut rest = BytesMut::new();
        prost::encoding::message::encode(2, &any(1), &mut rest);
        prost::encoding::message::encode(2, &any(2), &mut rest);
        let wire = Encoded::from_parts(&head, vec![rest.freeze(), Bytes::new()]).to_vec();
        assert_eq!(wire[0], 0);
        let len = u32::from_be_bytes([wire[1], wire[2], wire[3], wire[4]]) as usize;
        assert_eq!(len, wire.len() - 5);
        let decoded = DiscoveryResponse::decode(&wire[5..]).expect("decodes");
        assert_eq!(
            decoded,
            DiscoveryResponse {
                resources: vec![any(1), any(2)],
                ..head
            }
        );
    }
}
