//! The metal platform: the machine config is downloaded from the URL in the `talos.config=`
//! kernel argument (`none` or absent: no config source).
//!
//! Variables in the URL's query values are replaced as Talos does: `${uuid}`, `${serial}`,
//! `${mac}`, `${hostname}` and `${code}`, matched case-insensitively, and for backwards
//! compatibility a `uuid` parameter with an empty value (`?uuid=` or `?uuid`) is set to the
//! UUID. When any variable is present the query is re-encoded (keys sorted, values
//! form-encoded); otherwise the URL is used exactly as given. Only the query is substituted,
//! never the host or the path.
//!
//! Downloads are retried with exponential back-off (1 s doubling up to 30 s) for up to 3 h,
//! each attempt limited to 3 min; every failed attempt is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::{self, FetchError};
use super::{BoxFuture, Cmdline, Mode, Platform, PlatformError};

/// The kernel argument holding the config URL.
pub const CONFIG_ARG: &str = "talos.config";
/// The `talos.config=` value meaning "no config source".
pub const CONFIG_NONE: &str = "none";
/// The `talos.config=` value for a config ISO (not supported in this build).
pub const CONFIG_ISO: &str = "metal-iso";

/// The variables Talos substitutes in the config URL.
pub const VARIABLES: [&str; 5] = ["uuid", "serial", "mac", "hostname", "code"];

/// Where the values of URL variables come from.
pub trait VariableSource: Send + Sync {
    /// The value of `key` (one of [`VARIABLES`]), `None` if not known on this machine.
    fn value(&self, key: &str) -> Option<String>;
}

/// Values read from the running system: SMBIOS UUID and serial (`/sys/class/dmi/id`), the
/// MAC address of the first physical network interface, and the host name.
#[derive(Debug, Clone)]
pub struct SystemVariables {
    /// The sysfs root (`/sys`).
    pub sys_root: PathBuf,
}

impl Default for SystemVariables {
    fn default() -> Self {
        SystemVariables {
            sys_root: PathBuf::from("/sys"),
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl SystemVariables {
    fn first_mac(&self) -> Option<String> {
        let net = self.sys_root.join("class/net");
        let mut names: Vec<String> = std::fs::read_dir(&net)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.path().join("device").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
            .iter()
            .find_map(|n| read_trimmed(&net.join(n).join("address")))
    }
}

impl VariableSource for SystemVariables {
    fn value(&self, key: &str) -> Option<String> {
        let dmi = self.sys_root.join("class/dmi/id");
        match key {
            "uuid" => read_trimmed(&dmi.join("product_uuid")),
            "serial" => read_trimmed(&dmi.join("product_serial")),
            "mac" => self.first_mac(),
            "hostname" => crate::sys::fs::hostname().ok().filter(|h| !h.is_empty()),
            // The download code lives in META, which this build does not have yet.
            _ => None,
        }
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape` (lenient: a bad escape is kept as is).
fn query_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every case-insensitive occurrence of `${key}` in `value`.
fn replace_variable(value: &str, key: &str, replacement: &str) -> String {
    let needle = format!("${{{key}}}");
    let (hay, n) = (value.as_bytes(), needle.len());
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    let mut last = 0;
    while i + n <= hay.len() {
        if hay[i..i + n].eq_ignore_ascii_case(needle.as_bytes()) {
            out.push_str(&value[last..i]);
            out.push_str(replacement);
            i += n;
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&value[last..]);
    out
}

fn contains_variable(value: &str, key: &str) -> bool {
    replace_variable(value, key, "\u{0}") != value
}

/// The `uuid` legacy form: the parameter present with no (or a blank) value.
fn legacy_uuid(key: &str, values: &[String]) -> bool {
    key == "uuid" && (values.len() != 1 || values[0].trim().is_empty())
}

/// The URL with its variables replaced, and the variables that had no value on this machine
/// (left in place).
pub fn populate_url(url: &str, source: &dyn VariableSource) -> (String, Vec<&'static str>) {
    let (without_fragment, fragment) = match url.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (url, None),
    };
    let Some((base, raw_query)) = without_fragment.split_once('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut query: Vec<(String, Vec<String>)> = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (query_unescape(k), query_unescape(v));
        match query.iter_mut().find(|(key, _)| *key == k) {
            Some((_, values)) => values.push(v),
            None => query.push((k, vec![v])),
        }
    }
    let active: Vec<&'static str> = VARIABLES
        .iter()
        .copied()
        .filter(|var| {
            query.iter().any(|(k, values)| {
                (*var == "uuid" && legacy_uuid(k, values))
                    || values.iter().any(|v| contains_variable(v, var))
            })
        })
        .collect();
    if active.is_empty() {
        return (url.to_string(), Vec::new());
    }
    let mut missing = Vec::new();
    for var in &active {
        let Some(value) = source.value(var) else {
            missing.push(*var);
            continue;
        };
        for (k, values) in query.iter_mut() {
            if *var == "uuid" && legacy_uuid(k, values) {
                *values = vec![value.clone()];
                continue;
            }
            for v in values.iter_mut() {
                *v = replace_variable(v, var, &value);
            }
        }
    }
    query.sort_by(|a, b| a.0.cmp(&b.0));
    let encoded: Vec<String> = query
        .iter()
        .flat_map(|(k, values)| {
            values
                .iter()
                .map(move |v| format!("{}={}", query_escape(k), query_escape(v)))
        })
        .collect();
    let mut out = format!("{base}?{}", encoded.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    (out, missing)
}

/// How downloads are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First wait after a failure.
    pub initial_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Limit for one attempt.
    pub attempt_timeout: Duration,
    /// Give up after this long.
    pub total: Duration,
}

impl Default for RetryPolicy {
    /// Talos's: 3 h in total, 3 min per attempt.
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(180),
            total: Duration::from_secs(3 * 3600),
        }
    }
}

/// Whether the network can carry a download yet.
pub type NetworkReady = Arc<dyn Fn() -> bool + Send + Sync>;

/// How often the network is looked at while waiting for an address.
const NETWORK_POLL: Duration = Duration::from_millis(250);

/// True once some link has an address other than loopback and IPv6 link-local (what DHCP or a
/// static config gives): Talos's metal platform waits for that before the first download.
pub fn has_routable_address() -> bool {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addrs.filter_map(|a| a.address).any(|addr| {
        match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
            (Some(v4), _) => !v4.ip().is_loopback() && !v4.ip().is_unspecified(),
            (_, Some(v6)) => {
                let ip = v6.ip();
                !ip.is_loopback() && !ip.is_unspecified() && (ip.segments()[0] & 0xffc0) != 0xfe80
            }
            _ => false,
        }
    })
}

/// The metal platform.
#[derive(Clone)]
pub struct Metal {
    cmdline: Cmdline,
    variables: Arc<dyn VariableSource>,
    retry: RetryPolicy,
    network_ready: NetworkReady,
}

impl Metal {
    /// Metal with system variables and Talos's retry policy.
    pub fn new(cmdline: Cmdline) -> Self {
        Metal {
            cmdline,
            variables: Arc::new(SystemVariables::default()),
            retry: RetryPolicy::default(),
            network_ready: Arc::new(has_routable_address),
        }
    }

    /// Replaces the "network has an address" check.
    pub fn with_network_ready(mut self, ready: NetworkReady) -> Self {
        self.network_ready = ready;
        self
    }

    /// Waits until the network has an address (DHCP may still be running when init starts).
    async fn wait_for_network(&self) {
        if (self.network_ready)() {
            return;
        }
        tracing::info!("waiting for network to be ready (an address on some link) before fetching the machine config");
        let started = Instant::now();
        while !(self.network_ready)() {
            tokio::time::sleep(NETWORK_POLL).await;
        }
        tracing::info!("network ready after {:?}", started.elapsed());
    }

    /// Replaces where URL variables come from.
    pub fn with_variables(mut self, variables: Arc<dyn VariableSource>) -> Self {
        self.variables = variables;
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    async fn download(&self, option: &str) -> Result<Vec<u8>, PlatformError> {
        self.wait_for_network().await;
        let started = Instant::now();
        let mut delay = self.retry.initial_delay;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (url, missing) = populate_url(option, self.variables.as_ref());
            if !missing.is_empty() {
                tracing::warn!(
                    "talos.config URL variables without a value on this machine: {}",
                    missing.join(", ")
                );
            }
            tracing::info!("fetching machine config from: {url:?}");
            let error = match http::get(&url, self.retry.attempt_timeout).await {
                Ok(body) => {
                    tracing::info!(bytes = body.len(), attempt, "machine config downloaded");
                    return Ok(body);
                }
                Err(e) => e,
            };
            let give_up = |last: FetchError| PlatformError::Fetch {
                url: url.clone(),
                attempts: attempt,
                last,
            };
            if !error.retryable() {
                return Err(give_up(error));
            }
            if started.elapsed() + delay > self.retry.total {
                tracing::error!("failed to download config from {url:?}: {error}; giving up");
                return Err(give_up(error));
            }
            tracing::warn!(
                "failed to download config from {url:?} (attempt {attempt}): {error}; retrying in {delay:?}"
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.retry.max_delay);
        }
    }
}

impl Platform for Metal {
    fn name(&self) -> &str {
        "metal"
    }

    fn mode(&self) -> Mode {
        Mode::Metal
    }

    fn config_may_change(&self) -> bool {
        true
    }

    fn configuration(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>, PlatformError>> {
        Box::pin(async move {
            let Some(option) = self.cmdline.get(CONFIG_ARG).filter(|o| !o.is_empty()) else {
                return Ok(None);
            };
            if option == CONFIG_NONE {
                return Ok(None);
            }
            if option == CONFIG_ISO {
                return Err(PlatformError::BadSource {
                    value: option.to_string(),
                    reason: "config ISOs are not supported by this build; use an http:// URL"
                        .into(),
                });
            }
            let option = option.to_string();
            self.download(&option).await.map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fixed(HashMap<&'static str, &'static str>);

    impl VariableSource for Fixed {
        fn value(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|v| v.to_string())
        }
    }

    fn fixed() -> Fixed {
        Fixed(HashMap::from([
            ("uuid", "0000-1111"),
            ("serial", "SN 42"),
            ("mac", "52:54:00:12:34:56"),
            ("hostname", "node-1"),
        ]))
    }

    #[test]
    fn url_without_variables_is_unchanged() {
        for url in [
            "http://10.0.0.1/config.yaml",
            "http://h/c?b=2&a=${unknown}&a=1",
            "http://h/${uuid}/c",
        ] {
            assert_eq!(populate_url(url, &fixed()), (url.to_string(), vec![]));
        }
    }

    #[test]
    fn variables_are_replaced_in_query_values_case_insensitively() {
        let (url, missing) = populate_url(
            "http://h:8080/c?s=${SERIAL}&m=${mac}&h=x-${hostname}-${Hostname}&u=${uuid}#f",
            &fixed(),
        );
        assert!(missing.is_empty());
        // Keys sorted, values form-encoded (Go's url.Values.Encode).
        assert_eq!(
            url,
            "http://h:8080/c?h=x-node-1-node-1&m=52%3A54%3A00%3A12%3A34%3A56&s=SN+42&u=0000-1111#f"
        );
    }

    #[test]
    fn legacy_empty_uuid_parameter_is_filled() {
        assert_eq!(
            populate_url("http://h/c?uuid=&x=1", &fixed()).0,
            "http://h/c?uuid=0000-1111&x=1"
        );
        assert_eq!(
            populate_url("http://h/c?uuid", &fixed()).0,
            "http://h/c?uuid=0000-1111"
        );
        // A uuid parameter with a value is left alone.
        assert_eq!(
            populate_url("http://h/c?uuid=abc", &fixed()).0,
            "http://h/c?uuid=abc"
        );
    }

    #[test]
    fn unknown_values_are_reported_and_left_in_place() {
        let (url, missing) = populate_url("http://h/c?c=${code}&u=${uuid}", &fixed());
        assert_eq!(missing, vec!["code"]);
        assert_eq!(url, "http://h/c?c=%24%7Bcode%7D&u=0000-1111");
    }

    #[test]
    fn escapes_round_trip() {
        assert_eq!(query_unescape("a%20b+c%zz%4"), "a b c%zz%4");
        assert_eq!(query_escape("a b/ü"), "a+b%2F%C3%BC");
    }

    #[test]
    fn system_variables_read_sysfs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dmi = dir.path().join("class/dmi/id");
        std::fs::create_dir_all(&dmi).expect("dmi");
        std::fs::write(dmi.join("product_uuid"), "abcd-ef\n").expect("uuid");
        for (name, mac, physical) in [
            ("lo", "00:00:00:00:00:00", false),
            ("eth1", "02:00:00:00:00:02", true),
            ("eth0", "02:00:00:00:00:01", true),
        ] {
            let d = dir.path().join("class/net").join(name);
            std::fs::create_dir_all(&d).expect("net");
            std::fs::write(d.join("address"), format!("{mac}\n")).expect("address");
            if physical {
                std::fs::create_dir_all(d.join("device")).expect("device");
            }
        }
        let vars = SystemVariables {
            sys_root: dir.path().to_path_buf(),
        };
        assert_eq!(vars.value("uuid").as_deref(), Some("abcd-ef"));
        assert_eq!(vars.value("serial"), None);
        assert_eq!(vars.value("mac").as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(vars.value("code"), None);
    }

    fn fast_retry(total: Duration) -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            attempt_timeout: Duration::from_secs(5),
            total,
        }
    }

    fn metal(arg: &str, total: Duration) -> Metal {
        Metal::new(Cmdline::parse(arg))
            .with_variables(Arc::new(fixed()))
            .with_retry(fast_retry(total))
            .with_network_ready(Arc::new(|| true))
    }

    #[tokio::test]
    async fn no_source_means_no_config() {
        for arg in ["", "talos.config=none", "talos.config="] {
            let m = metal(arg, Duration::from_secs(1));
            assert_eq!(m.configuration().await.expect("ok"), None, "{arg}");
        }
        let err = metal("talos.config=metal-iso", Duration::from_secs(1))
            .configuration()
            .await
            .expect_err("iso");
        assert!(err.to_string().contains("http://"), "{err}");
        let err = metal("talos.config=https://h/c", Duration::from_secs(60))
            .configuration()
            .await
            .expect_err("https is not retried");
        assert!(err.to_string().contains("1 attempt"), "{err}");
    }

    /// A loopback server answering `responses`, one connection each; its task returns the
    /// request lines it saw.
    async fn start_server(
        responses: Vec<&'static str>,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (addr, tokio::spawn(serve(listener, responses)))
    }

    /// Serves `responses` one connection each, recording the request lines.
    async fn serve(listener: tokio::net::TcpListener, responses: Vec<&'static str>) -> Vec<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut seen = Vec::new();
        for response in responses {
            let Ok((mut s, _)) = listener.accept().await else {
                break;
            };
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(text.lines().next().unwrap_or_default().to_string());
            let _ = s.write_all(response.as_bytes()).await;
            let _ = s.shutdown().await;
        }
        seen
    }

    #[tokio::test]
    async fn waits_for_a_network_address_before_the_first_attempt() {
        let (addr, server) = start_server(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\nversion: v1alpha1\n",
        ])
        .await;
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&polls);
        // The "DHCP lease" arrives on the fourth look.
        let m = metal(
            &format!("talos.config=http://{addr}/c"),
            Duration::from_secs(20),
        )
        .with_network_ready(Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 3
        }));
        let config = m.configuration().await.expect("downloaded");
        assert_eq!(config, Some(b"version: v1alpha1\n".to_vec()));
        assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 4);
        // One request: no attempt was spent while the network was down.
        assert_eq!(server.await.expect("server").len(), 1);
    }

    #[tokio::test]
    async fn downloads_with_retries_after_errors() {
        let (addr, server) = start_server(vec![
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
            "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\nversion: v1alpha1\n",
        ])
        .await;
        let m = metal(
            &format!("talos.config=http://{addr}/c?h=${{hostname}}"),
            Duration::from_secs(20),
        );
        let config = m.configuration().await.expect("downloaded");
        assert_eq!(config, Some(b"version: v1alpha1\n".to_vec()));
        let seen = server.await.expect("server");
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1], "GET /c?h=node-1 HTTP/1.1");
    }

    #[tokio::test]
    async fn unreachable_server_is_retried_then_reported() {
        // A port that was free a moment ago: connections are refused.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let m = metal(
            &format!("talos.config=http://{addr}/config.yaml"),
            Duration::from_millis(400),
        );
        let err = m.configuration().await.expect_err("unreachable");
        let PlatformError::Fetch { attempts, last, .. } = &err else {
            panic!("unexpected error {err}");
        };
        assert!(*attempts >= 3, "{err}");
        assert!(matches!(last, FetchError::Io(_)), "{err}");
        assert!(err.to_string().contains("connecting to 127.0.0.1"), "{err}");
    }
}
