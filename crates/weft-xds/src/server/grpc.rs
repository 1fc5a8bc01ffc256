//! ADS over gRPC without tonic's response codec. A response goes out as the byte slices it
//! was assembled from — a small head, then resources a layer encoded once for every stream
//! that sends it — so pushing one namespace's clusters to a thousand sidecars copies none
//! of them, and no stream keeps an encode buffer as large as its largest response (tonic's
//! keeps one per stream for the stream's life). Requests are decoded here too, into a
//! buffer dropped once empty: an ACK naming two thousand EDS clusters is 100 KB, and a
//! thousand streams each keeping a buffer that size was a tenth of a gigabyte.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use http_body::{Body as _, Frame};
use tokio::sync::mpsc;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;

use super::stream::{self, Protocol};
use super::{MAX_REQUEST_BYTES, RESPONSE_QUEUE, Shared, delta, sotw};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

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

    /// A whole message, encoded into its own buffer (freed once it is written).
    #[cfg(test)]
    pub fn message(message: &impl prost::Message) -> Self {
        Self::from_parts(message, Vec::new())
    }

    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.concat()
    }
}

/// What a stream task hands the response body: a message, or the status to end with.
pub(super) type Outgoing = Result<Encoded, Status>;

/// The response body of one ADS stream: its messages' slices as data frames, then the
/// gRPC status as trailers (OK when the stream's task ends without one).
struct ResponseBody {
    rx: mpsc::Receiver<Outgoing>,
    parts: std::vec::IntoIter<Bytes>,
    done: bool,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if let Some(part) = this.parts.next() {
                return Poll::Ready(Some(Ok(Frame::data(part))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let status = match ready!(this.rx.poll_recv(cx)) {
                Some(Ok(message)) => {
                    this.parts = message.parts.into_iter();
                    continue;
                }
                Some(Err(status)) => status,
                None => Status::ok(""),
            };
            this.done = true;
            let mut trailers = http::HeaderMap::new();
            if let Err(bad) = status.add_header(&mut trailers) {
                // A message that cannot be a header value: keep the code, drop the text.
                trailers = http::HeaderMap::new();
                let _ = Status::new(bad.code(), "").add_header(&mut trailers);
            }
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.parts.len() == 0
    }
}

/// The request side of a stream: length-prefixed messages from the request body.
pub(super) struct Requests<M> {
    body: Body,
    buf: BytesMut,
    ended: bool,
    _message: std::marker::PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> Requests<M> {
    fn new(body: Body) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
            ended: false,
            _message: std::marker::PhantomData,
        }
    }

    /// The next request; `None` once the client has half-closed between messages.
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
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
                    return M::decode(message)
                        .map(Some)
                        .map_err(|e| Status::internal(format!("undecodable request: {e}")));
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
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => self.ended = true,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(status)) => return Err(status),
            }
        }
    }
}

/// The ADS gRPC service: one task per stream (see `stream::run`).
#[derive(Clone, Debug)]
pub struct AdsService {
    pub(super) shared: Arc<Shared>,
}

impl NamedService for AdsService {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

impl Service<http::Request<Body>> for AdsService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = match request.uri().path() {
            SOTW_PATH => self.open::<sotw::TypeState, DiscoveryRequest>(request),
            DELTA_PATH => self.open::<delta::TypeState, DeltaDiscoveryRequest>(request),
            other => Status::unimplemented(format!("no method {other}")).into_http(),
        };
        std::future::ready(Ok(response))
    }
}

impl AdsService {
    fn open<T, Req>(&self, request: http::Request<Body>) -> http::Response<Body>
    where
        Req: prost::Message + Default + Send + 'static,
        stream::Stream<T>: Protocol<Request = Req> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(encoding) = request.headers().get("grpc-encoding")
            && encoding != "identity"
        {
            return Status::unimplemented(format!(
                "request compression {encoding:?} is not supported"
            ))
            .into_http();
        }
        let (tx, rx) = mpsc::channel(RESPONSE_QUEUE);
        let stream_id = self.shared.next_stream.fetch_add(1, Ordering::Relaxed);
        let inbound = Requests::new(request.into_body());
        tokio::spawn(stream::run::<T>(
            self.shared.clone(),
            stream_id,
            inbound,
            tx,
        ));
        let body = ResponseBody {
            rx,
            parts: Vec::new().into_iter(),
            done: false,
        };
        let mut response = http::Response::new(Body::new(body));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
    use envoy_types::pb::google::protobuf::Any;
    use prost::Message;
    use std::task::Context;

    /// A request body delivering fixed chunks.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = Status;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn requests(chunks: Vec<Vec<u8>>) -> Requests<DiscoveryRequest> {
        Requests::new(Body::new(Chunks(
            chunks.into_iter().map(Bytes::from).collect(),
        )))
    }

    fn framed(m: &DiscoveryRequest) -> Vec<u8> {
        Encoded::message(m).to_vec()
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
