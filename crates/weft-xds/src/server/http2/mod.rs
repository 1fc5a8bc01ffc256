//! A minimal HTTP/2 server (RFC 9113) for the ADS gRPC streams, in place of hyper and h2:
//! those keep tens of kilobytes of buffers per connection for its whole life, which for a
//! control plane holding a thousand idle sidecar connections was most of its memory. This
//! one holds buffers only while a frame is being read or written.

mod connection;
mod frame;
mod hpack;
mod huffman;
pub(super) mod inbox;
mod writer;

pub(super) use connection::serve;

#[cfg(test)]
mod tests;
