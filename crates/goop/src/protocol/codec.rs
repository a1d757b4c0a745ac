//! The wire codec shared by goop's request-response protocols: raw bytes up to a bound.
//!
//! Each request and each response is one message: the sender writes it and closes its side of
//! the stream. A message past the protocol's bound is an error, read no further.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::node::budget::AnswerCharge;

/// Size bounds of one protocol, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub request: usize,
    pub response: usize,
}

/// An answer's bytes and the budget they hold. libp2p drops the answer once it is written, or
/// when its stream fails, times out or its connection closes; the charge is given back then,
/// so no path can keep it.
#[derive(Debug)]
pub struct Response {
    pub bytes: Vec<u8>,
    _charge: Option<AnswerCharge>,
}

impl Response {
    pub fn charged(bytes: Vec<u8>, charge: AnswerCharge) -> Response {
        Response { bytes, _charge: Some(charge) }
    }
}

impl From<Vec<u8>> for Response {
    fn from(bytes: Vec<u8>) -> Response {
        Response { bytes, _charge: None }
    }
}

#[derive(Debug, Clone)]
pub struct BytesCodec {
    bounds: Bounds,
}

impl BytesCodec {
    pub fn new(bounds: Bounds) -> Self {
        BytesCodec { bounds }
    }
}

async fn read_bounded<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(max as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("message larger than {max} bytes")));
    }
    Ok(buf)
}

async fn write_all<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.close().await
}

#[async_trait::async_trait]
impl libp2p::request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Response;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_bounded(io, self.bounds.request).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response> {
        let answer = read_bounded(io, self.bounds.response).await?;
        // Every goop answer has a body; an empty one means the peer dropped the request.
        if answer.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer refused the request"));
        }
        Ok(answer.into())
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_all(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()> {
        write_all(io, &res.bytes).await
    }
}
