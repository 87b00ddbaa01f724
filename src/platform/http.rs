//! A minimal HTTP/1.1 `GET` for config downloads: `http://` URLs only, one request per
//! connection (`Connection: close`), `Content-Length`, chunked and read-to-close bodies.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The largest config accepted (Talos's gRPC limit is the same order).
pub const MAX_BODY: usize = 32 << 20;

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not `http://host[:port][/path][?query]`.
    #[error("unsupported URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong, and what is supported.
        reason: String,
    },
    /// Connecting, sending or receiving failed.
    #[error("{0}")]
    Io(String),
    /// The attempt took too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered something other than 200.
    #[error("status code {status}, body {body:?}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The response is not valid HTTP/1.x.
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl FetchError {
    /// Whether trying again may help (everything but an unusable URL).
    pub fn retryable(&self) -> bool {
        !matches!(self, FetchError::BadUrl { .. })
    }
}

/// The parts of an `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 by default).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Splits an `http://` URL.
pub fn parse_url(url: &str) -> Result<HttpUrl, FetchError> {
    let bad = |reason: &str| FetchError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("expected http://HOST[:PORT]/PATH"));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(bad(&format!(
            "scheme {scheme:?} is not supported by this build (only http://)"
        )));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
            None if after.is_empty() => 80,
            None => return Err(bad("junk after ']'")),
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("invalid port"))?),
            None => (authority.to_string(), 80),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(HttpUrl { host, port, path })
}

/// Downloads `url` (must answer 200) within `timeout`.
pub async fn get(url: &str, timeout: Duration) -> Result<Vec<u8>, FetchError> {
    get_with_headers(url, &[], timeout).await
}

/// Downloads `url` sending extra request `headers` (e.g. `cluster.extraManifestHeaders`).
pub async fn get_with_headers(
    url: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    let parsed = parse_url(url)?;
    match tokio::time::timeout(timeout, get_parsed(&parsed, headers)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout(timeout)),
    }
}

async fn get_parsed(url: &HttpUrl, headers: &[(String, String)]) -> Result<Vec<u8>, FetchError> {
    let io = |what: &str, e: std::io::Error| FetchError::Io(format!("{what}: {e}"));
    let mut stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| io(&format!("connecting to {}:{}", url.host, url.port), e))?;
    let host_header = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let host_header = if url.port == 80 {
        host_header
    } else {
        format!("{host_header}:{}", url.port)
    };
    let extra: String = headers
        .iter()
        .filter(|(k, v)| !k.contains(['\r', '\n', ':']) && !v.contains(['\r', '\n']))
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: talos/{}\r\n\
         Accept: */*\r\n{extra}Connection: close\r\n\r\n",
        url.path,
        crate::version::TALOS_VERSION
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| io("sending the request", e))?;
    let mut response = Vec::new();
    (&mut stream)
        .take((MAX_BODY + 64 * 1024) as u64)
        .read_to_end(&mut response)
        .await
        .map_err(|e| io("reading the response", e))?;
    parse_response(&response)
}

/// Parses a complete HTTP/1.x response; a non-200 status is an error.
pub fn parse_response(response: &[u8]) -> Result<Vec<u8>, FetchError> {
    let malformed = |what: &str| FetchError::Malformed(what.to_string());
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| malformed("headers not UTF-8"))?;
    let raw_body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed(&format!("status line {status_line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed(&format!("status line {status_line:?}")))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse()
                    .map_err(|_| malformed("invalid Content-Length"))?,
            );
        }
    }
    let body = if chunked {
        decode_chunked(raw_body)?
    } else if let Some(n) = length {
        if raw_body.len() < n {
            return Err(malformed(&format!(
                "body truncated: {} of {n} bytes",
                raw_body.len()
            )));
        }
        raw_body[..n].to_vec()
    } else {
        raw_body.to_vec()
    };
    if body.len() > MAX_BODY {
        return Err(malformed("body larger than 32 MiB"));
    }
    if status != 200 {
        let text = String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned();
        return Err(FetchError::Status { status, body: text });
    }
    Ok(body)
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, FetchError> {
    let malformed = |what: &str| FetchError::Malformed(format!("chunked body: {what}"));
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| malformed("missing chunk size"))?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| malformed("size"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| malformed("invalid chunk size"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(malformed("truncated chunk"));
        }
        out.extend_from_slice(&data[..size]);
        if out.len() > MAX_BODY {
            return Err(malformed("larger than 32 MiB"));
        }
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://10.0.0.1:8080/c/x.yaml?u=1").expect("ok"),
            HttpUrl {
                host: "10.0.0.1".into(),
                port: 8080,
                path: "/c/x.yaml?u=1".into()
            }
        );
        assert_eq!(parse_url("HTTP://h?x=1").expect("ok").path, "/?x=1");
        assert_eq!(parse_url("http://[fd00::1]/").expect("ok").host, "fd00::1");
        assert_eq!(parse_url("http://[fd00::1]:81/").expect("ok").port, 81);
        let err = parse_url("https://h/c").expect_err("https");
        assert!(err.to_string().contains("only http://"), "{err}");
        assert!(!err.retryable());
        assert!(parse_url("ftp-ish").is_err());
        assert!(parse_url("http://:80/").is_err());
    }

    #[test]
    fn responses() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").expect("ok"),
            b"abc"
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n"
            )
            .expect("ok"),
            b"abcde"
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\n\r\nrest").expect("ok"),
            b"rest"
        );
        let err = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
            .expect_err("404");
        assert_eq!(
            err,
            FetchError::Status {
                status: 404,
                body: "nope".into()
            }
        );
        assert!(err.retryable());
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
    }
}
