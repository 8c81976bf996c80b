//! A minimal HTTP/1.1 keep-alive client connection: write pre-built request bytes, read one
//! response (status and `Content-Length` body), repeat.
//!
//! Why not reqwest or hyper's client: the generator shares a machine with the server it measures,
//! so every cycle it spends is a cycle the server (or the ceiling) does not get. Pre-built
//! requests and a single buffer keep its cost per request to two syscalls and a header scan, well
//! below the server's, so the figures measure the server and not the generator.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One response as the generator needs it.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        // Requests are single small writes; Nagle would only add delay.
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(16 * 1024) })
    }

    /// Sends `request` (a complete HTTP/1.1 request) and reads the status of the answer,
    /// discarding its body. The fast path of the load loops.
    pub async fn status(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request).await?;
        let (status, _, end) = self.read_response(false).await?;
        self.buf.drain(..end);
        Ok(status)
    }

    /// Sends `request` and returns the whole answer (headers and body), for set-up and checks.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        let (status, headers, end) = self.read_response(true).await?;
        let head_len = end - self.body_len_of(&headers);
        let body = self.buf[head_len..end].to_vec();
        self.buf.drain(..end);
        Ok(Response { status, headers, body })
    }

    fn body_len_of(&self, headers: &[(String, String)]) -> usize {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Reads until one full response is buffered. Returns its status, its headers (only when
    /// asked: copying them costs) and the length of the response in the buffer.
    async fn read_response(&mut self, keep_headers: bool) -> io::Result<(u16, Vec<(String, String)>, usize)> {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut slots);
            match response.parse(&self.buf) {
                Ok(httparse::Status::Complete(head)) => {
                    let status = response.code.unwrap_or(0);
                    let mut length = 0usize;
                    let mut headers = Vec::new();
                    for h in response.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            length = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .ok_or_else(|| invalid("bad content-length"))?;
                        }
                        if keep_headers {
                            headers.push((h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()));
                        }
                    }
                    let end = head + length;
                    while self.buf.len() < end {
                        self.fill().await?;
                    }
                    return Ok((status, headers, end));
                }
                Ok(httparse::Status::Partial) => self.fill().await?,
                Err(e) => return Err(invalid(&format!("unparsable response: {e}"))),
            }
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the server"));
        }
        Ok(())
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// A GET with a bearer key, as HA sends it (minus headers the server ignores).
pub fn get_request(path: &str, bearer: Option<&str>) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    if let Some(key) = bearer {
        request.push_str(&format!("authorization: Bearer {key}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// A POST with a body and extra headers.
pub fn post_request(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    request
}
