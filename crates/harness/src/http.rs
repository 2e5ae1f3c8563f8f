//! Just enough HTTP/1.1 for the test servers that stand in front of the
//! registry (the blob gate, a CDN that a redirect points at): read one
//! request, write one response, one request per connection.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// Header names (in lower case) and values.
pub type Headers = Vec<(String, String)>;

/// Method, path and headers of one HTTP/1.1 request; `None` for anything
/// else (a TLS hello, from a client trying HTTPS first).
pub fn read_request(stream: &TcpStream) -> Option<(String, String, Headers)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    if !path.starts_with('/') {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
    }
    Some((method, path, headers))
}

/// Writes one response with `Connection: close`, ignoring a client that left.
pub fn respond(mut stream: TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}
