//! Syntax checks for the values validation meets: CIDRs, URLs and endpoints, DNS names,
//! Kubernetes labels, bootstrap tokens and base64 PEM blocks.

use std::net::IpAddr;

use base64::Engine;

use super::Report;

/// Checks that `b64` is base64 of a PEM block whose label contains `label`.
pub(super) fn check_pem(b64: &str, label: &str, path: &str, r: &mut Report) {
    let raw = match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
        Ok(raw) => raw,
        Err(e) => {
            r.err(path, format!("not valid base64: {e}"));
            return;
        }
    };
    match pem::parse_many(&raw) {
        Ok(blocks) if !blocks.is_empty() => {
            if !blocks.iter().all(|b| b.tag().contains(label)) {
                r.err(
                    path,
                    format!("expected a PEM {label} block, found {:?}", blocks[0].tag()),
                );
            }
        }
        Ok(_) => r.err(path, "no PEM block found"),
        Err(e) => r.err(path, format!("not valid PEM: {e}")),
    }
}

/// The scheme, port and path of a tcp:// or udp:// log endpoint at `path`.
pub(super) fn check_tcp_udp_url(u: &UrlParts, path: &str, r: &mut Report) {
    if u.scheme != "tcp" && u.scheme != "udp" {
        r.err(
            path,
            format!("unsupported scheme {:?} (expected tcp or udp)", u.scheme),
        );
    }
    if u.port.is_none() {
        r.err(path, "port is required");
    }
    if !u.path.is_empty() && u.path != "/" {
        r.err(path, "path must be empty");
    }
}

/// A CIDR (`10.0.0.1/24`, `fd00::/8`): address and prefix length.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

pub(super) fn is_ip_or_cidr(s: &str) -> bool {
    if s.contains('/') {
        parse_cidr(s).is_some()
    } else {
        s.parse::<IpAddr>().is_ok()
    }
}

pub(super) fn is_subnet_or_address(s: &str) -> bool {
    is_ip_or_cidr(s)
}

pub(super) fn is_bootstrap_token(t: &str) -> bool {
    let ok = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    t.split_once('.')
        .is_some_and(|(a, b)| ok(a, 6) && ok(b, 16))
}

pub(super) fn is_valid_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() - name.matches('.').count() > 255 {
        return false;
    }
    let trimmed = name
        .strip_suffix('.')
        .or_else(|| name.strip_suffix('_'))
        .unwrap_or(name);
    if trimmed.is_empty() {
        return false;
    }
    trimmed.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    })
}

pub(super) fn address_has_port(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some(x) => x,
        None => return false,
    };
    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
}

pub(super) fn check_label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        if p.is_empty() || p.len() > 253 || !is_valid_dns_name(p) {
            return Err(format!("prefix {p:?} must be a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Err(format!("name part of {k:?} must not be empty"));
    }
    check_label_value(name).map_err(|_| {
        format!("name part of {k:?} must be 63 characters or less, alphanumeric, '-', '_' or '.'")
    })
}

pub(super) fn check_label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let b = v.as_bytes();
    let ok = b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{v:?} must be 63 characters or less, start and end with an alphanumeric character, and contain only alphanumerics, '-', '_' or '.'"))
    }
}

/// The parts of a `scheme://host[:port][/path]` URL that validation needs.
pub(super) struct UrlParts {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

pub(super) fn split_url(s: &str) -> Option<UrlParts> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let path = tail.split(['?', '#']).next().unwrap_or("").to_string();
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => {
                if h.contains(':') {
                    return None;
                }
                (h.to_string(), Some(p.parse::<u16>().ok()?))
            }
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(UrlParts {
        scheme: scheme.to_ascii_lowercase(),
        host,
        port,
        path,
    })
}

/// Talos's endpoint check: a parseable URL with a host, IPv6 in brackets, and a port in range.
pub(super) fn validate_endpoint_uri(ep: &str) -> Result<(), String> {
    let Some((_, rest)) = ep.split_once("://") else {
        return Err("hostname must not be blank".to_string());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.matches(':').count() > 2 && !(authority.contains('[') && authority.contains(']')) {
        return Err("IPv6 addresses MUST be enclosed by square brackets".to_string());
    }
    match split_url(ep) {
        None => Err("not a valid URL (expected scheme://host[:port])".to_string()),
        Some(u) => {
            if u.port == Some(0) {
                return Err("port number must be between 1 and 65535".to_string());
            }
            if u.host.is_empty() {
                return Err("hostname must not be blank".to_string());
            }
            Ok(())
        }
    }
}
