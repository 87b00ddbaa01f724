//! The kernel command line (`/proc/cmdline`): `key=value` and bare `key` parameters, values
//! optionally double-quoted.

use std::path::Path;

/// The parsed kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    params: Vec<(String, Option<String>)>,
}

/// Where the kernel command line is read from on a node.
pub const PROC_CMDLINE: &str = "/proc/cmdline";

impl Cmdline {
    /// Parses command-line text.
    pub fn parse(text: &str) -> Cmdline {
        let mut params = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        let mut words = Vec::new();
        for c in text.chars() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !current.is_empty() {
                        words.push(std::mem::take(&mut current));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        for word in words {
            match word.split_once('=') {
                Some((k, v)) => params.push((k.to_string(), Some(v.to_string()))),
                None => params.push((word, None)),
            }
        }
        Cmdline { params }
    }

    /// Reads and parses a command-line file; an unreadable file gives an empty command line.
    pub fn read(path: &Path) -> Cmdline {
        std::fs::read_to_string(path)
            .map(|t| Cmdline::parse(&t))
            .unwrap_or_default()
    }

    /// The first value of `key` (`Some("")` for a bare `key` or `key=`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_quotes_and_bare_keys() {
        let c = Cmdline::parse(
            "BOOT_IMAGE=/vmlinuz talos.config=http://x/c?u=${uuid} slab_nomerge quiet \
             talos.environment=\"A=b c\" talos.config=second\n",
        );
        assert_eq!(c.get("talos.config"), Some("http://x/c?u=${uuid}"));
        assert_eq!(c.get("slab_nomerge"), Some(""));
        assert_eq!(c.get("talos.environment"), Some("A=b c"));
        assert_eq!(c.get("missing"), None);
        assert_eq!(Cmdline::read(Path::new("/nonexistent")), Cmdline::default());
    }
}
