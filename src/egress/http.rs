//! Just enough HTTP/1.1 for the egress proxy: read a message head, parse it, rewrite its headers.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest head we read; Chromium's own limit for request headers is a little under this.
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// Why no head could be read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// The peer closed the connection before a complete head.
    Closed,
    /// The head is longer than [`MAX_HEAD`].
    TooLarge,
    Io(io::Error),
}

/// Reads from `reader` until `buf` holds a complete head, and returns the head's length
/// (including the blank line). Bytes after it stay in `buf`: they belong to the body or tunnel.
pub(super) async fn read_head<R>(reader: &mut R, buf: &mut Vec<u8>) -> Result<usize, HeadError>
where
    R: AsyncRead + Unpin,
{
    let mut searched = 0;
    loop {
        if let Some(at) = find_blank_line(&buf[searched..]) {
            let len = searched + at + 4;
            return if len > MAX_HEAD {
                Err(HeadError::TooLarge)
            } else {
                Ok(len)
            };
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        // The blank line may straddle two reads.
        searched = buf.len().saturating_sub(3);
        let mut chunk = [0u8; 8192];
        match reader.read(&mut chunk).await {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(HeadError::Io(err)),
        }
    }
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n")
}

/// The three parts of a request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RequestLine {
    pub method: String,
    pub target: String,
    pub version: String,
}

/// A parsed message head: the request or status line and the header fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub start: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// Parses a head as returned by [`read_head`]; `None` if it is malformed (including obsolete
    /// line folding and whitespace before a colon, which request smuggling relies on).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.strip_suffix(b"\r\n\r\n")?;
        let mut lines = bytes
            .split(|byte| *byte == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        let start = std::str::from_utf8(lines.next()?).ok()?;
        if start.is_empty() || !start.is_ascii() || start.bytes().any(|b| b.is_ascii_control()) {
            return None;
        }
        let mut headers = Vec::new();
        for line in lines {
            let colon = line.iter().position(|byte| *byte == b':')?;
            let name = std::str::from_utf8(&line[..colon]).ok()?;
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return None;
            }
            let value = line[colon + 1..].trim_ascii();
            if value
                .iter()
                .any(|byte| matches!(byte, b'\r' | b'\n' | b'\0'))
            {
                return None;
            }
            headers.push((name.to_owned(), value.to_vec()));
        }
        Some(Self {
            start: start.to_owned(),
            headers,
        })
    }

    /// Splits a request line into method, target and version (HTTP/1.0 or HTTP/1.1).
    pub fn request_line(&self) -> Option<RequestLine> {
        let mut parts = self.start.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        let valid = parts.next().is_none()
            && !method.is_empty()
            && !target.is_empty()
            && matches!(version, "HTTP/1.1" | "HTTP/1.0");
        valid.then(|| RequestLine {
            method: method.to_owned(),
            target: target.to_owned(),
            version: version.to_owned(),
        })
    }

    /// The status code of a response's status line.
    pub fn status(&self) -> Option<u16> {
        let mut parts = self.start.splitn(3, ' ');
        let version = parts.next()?;
        let code = parts.next()?;
        if !version.starts_with("HTTP/1.") || code.len() != 3 {
            return None;
        }
        code.parse().ok()
    }

    /// Removes the hop-by-hop headers (`Connection`, those it names, `Keep-Alive` and the
    /// `Proxy-*` ones). The body's framing headers always stay: the body is passed on as is.
    pub fn remove_hop_by_hop(&mut self) {
        let mut named: Vec<String> = vec![
            "connection".into(),
            "keep-alive".into(),
            "proxy-connection".into(),
            "proxy-authorization".into(),
            "proxy-authenticate".into(),
            "upgrade".into(),
        ];
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("connection") {
                named.extend(
                    String::from_utf8_lossy(value)
                        .split(',')
                        .map(|token| token.trim().to_ascii_lowercase())
                        .filter(|token| {
                            !matches!(
                                token.as_str(),
                                "content-length" | "transfer-encoding" | "host"
                            )
                        }),
                );
            }
        }
        self.headers
            .retain(|(name, _)| !named.iter().any(|hop| name.eq_ignore_ascii_case(hop)));
    }

    /// Replaces every field called `name` with one field holding `value`, in the first one's
    /// place (or at the end).
    pub fn set(&mut self, name: &str, value: &str) {
        let field = (name.to_owned(), value.as_bytes().to_vec());
        match self
            .headers
            .iter()
            .position(|(have, _)| have.eq_ignore_ascii_case(name))
        {
            Some(first) => {
                self.headers[first] = field;
                let mut index = 0;
                self.headers.retain(|(have, _)| {
                    index += 1;
                    index - 1 == first || !have.eq_ignore_ascii_case(name)
                });
            }
            None => self.headers.push(field),
        }
    }

    /// Serialises the head, blank line included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(self.start.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::{Head, read_head};

    #[tokio::test]
    async fn read_head_keeps_the_bytes_after_the_head() {
        let mut input: &[u8] = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03";
        let mut buf = Vec::new();

        let len = read_head(&mut input, &mut buf).await.expect("a head");

        assert_eq!(
            &buf[..len],
            b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"
        );
        assert_eq!(&buf[len..], b"\x16\x03");
    }

    #[test]
    fn parse_refuses_folded_lines_and_space_before_the_colon() {
        assert!(Head::parse(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n").is_none());
        assert!(Head::parse(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n").is_none());
    }

    #[test]
    fn remove_hop_by_hop_drops_the_headers_connection_names_but_keeps_framing() {
        let mut head = Head::parse(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, X-Secret, Content-Length\r\n\
              X-Secret: 1\r\nProxy-Connection: keep-alive\r\nContent-Length: 2\r\nAccept: */*\r\n\r\n",
        )
        .expect("a head");

        head.remove_hop_by_hop();

        let names: Vec<&str> = head.headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["Content-Length", "Accept"]);
    }

    #[test]
    fn status_reads_the_code_of_a_status_line() {
        let head = Head::parse(b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n").expect("a head");

        assert_eq!(head.status(), Some(302));
    }
}
