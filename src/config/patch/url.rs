//! Part-by-part URL merge. Talos keeps URL fields as Go `url.URL` structs, and its reflective
//! merge replaces each non-empty part (scheme, user info, host, path, query, fragment)
//! separately, so patching `https://a:6443` onto `https://b:6443/x?y=1` gives
//! `https://a:6443/x?y=1`.

/// The parts of a URL, split the way Go's `url.Parse` splits them (without unescaping).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Parts {
    scheme: String,
    opaque: String,
    user: Option<String>,
    host: String,
    path: String,
    force_query: bool,
    query: String,
    fragment: String,
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn parse(input: &str) -> Parts {
    let mut parts = Parts::default();
    let mut rest = input;
    if let Some((before, fragment)) = rest.split_once('#') {
        parts.fragment = fragment.to_string();
        rest = before;
    }
    if let Some((before, query)) = rest.split_once('?') {
        parts.query = query.to_string();
        parts.force_query = query.is_empty();
        rest = before;
    }
    if let Some((scheme, after)) = rest.split_once(':') {
        if is_scheme(scheme) {
            parts.scheme = scheme.to_string();
            rest = after;
            if !rest.starts_with('/') {
                parts.opaque = rest.to_string();
                return parts;
            }
        }
    }
    if let Some(after) = rest.strip_prefix("//") {
        let (authority, path) = match after.find('/') {
            Some(i) => after.split_at(i),
            None => (after, ""),
        };
        match authority.rsplit_once('@') {
            Some((user, host)) => {
                parts.user = Some(user.to_string());
                parts.host = host.to_string();
            }
            None => parts.host = authority.to_string(),
        }
        parts.path = path.to_string();
    } else {
        parts.path = rest.to_string();
    }
    parts
}

fn render(p: &Parts) -> String {
    let mut out = String::new();
    if !p.scheme.is_empty() {
        out.push_str(&p.scheme);
        out.push(':');
    }
    if !p.opaque.is_empty() {
        out.push_str(&p.opaque);
    } else {
        if (!p.scheme.is_empty() || !p.host.is_empty() || p.user.is_some())
            && (!p.host.is_empty() || !p.path.is_empty() || p.user.is_some())
        {
            out.push_str("//");
            if let Some(user) = &p.user {
                out.push_str(user);
                out.push('@');
            }
            out.push_str(&p.host);
        }
        if !p.path.is_empty() && !p.path.starts_with('/') && !p.host.is_empty() {
            out.push('/');
        }
        out.push_str(&p.path);
    }
    if p.force_query || !p.query.is_empty() {
        out.push('?');
        out.push_str(&p.query);
    }
    if !p.fragment.is_empty() {
        out.push('#');
        out.push_str(&p.fragment);
    }
    out
}

/// Merges URL `right` into URL `left`: every non-empty part of `right` replaces that part.
pub(crate) fn merge(left: &str, right: &str) -> String {
    let mut l = parse(left);
    let r = parse(right);
    let take = |l: &mut String, r: &String| {
        if !r.is_empty() {
            l.clone_from(r);
        }
    };
    take(&mut l.scheme, &r.scheme);
    take(&mut l.opaque, &r.opaque);
    if r.user.is_some() {
        l.user = r.user;
    }
    take(&mut l.host, &r.host);
    take(&mut l.path, &r.path);
    l.force_query = r.force_query;
    take(&mut l.query, &r.query);
    take(&mut l.fragment, &r.fragment);
    render(&l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for u in [
            "https://siderolink.api/join?jointoken=secret&user=alice",
            "https://1.2.3.4:6443",
            "tcp://[fd00::1]:5000/",
            "udp://user:pw@host:514/path#frag",
            "mailto:someone@example.com",
        ] {
            assert_eq!(render(&parse(u)), u);
        }
    }

    #[test]
    fn merges_part_by_part() {
        assert_eq!(
            merge("https://old:6443/x?y=1", "https://new:6443"),
            "https://new:6443/x?y=1"
        );
        assert_eq!(
            merge(
                "https://siderolink.api/join?jointoken=secret&user=alice",
                "https://siderolink.api/join?jointoken=secret&user=bob"
            ),
            "https://siderolink.api/join?jointoken=secret&user=bob"
        );
    }
}
