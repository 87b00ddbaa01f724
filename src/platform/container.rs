//! The container platform: PID 1 of namespaces a provisioner made; the machine config is the
//! base64 `USERDATA` environment variable (absent or empty: no config, maintenance mode).

use base64::Engine as _;

use super::{BoxFuture, Mode, Platform, PlatformError};

/// The environment variable holding the base64 machine config.
pub const USERDATA_ENV: &str = "USERDATA";

/// The container platform.
#[derive(Debug, Clone, Default)]
pub struct Container {
    userdata: Option<String>,
}

impl Container {
    /// A container platform with `USERDATA` as given.
    pub fn new(userdata: Option<String>) -> Self {
        Container { userdata }
    }

    /// A container platform reading `USERDATA` from this process's environment.
    pub fn from_env() -> Self {
        Container::new(std::env::var(USERDATA_ENV).ok())
    }

    /// Decodes the config (sync).
    pub fn decode(&self) -> Result<Option<Vec<u8>>, PlatformError> {
        let Some(data) = self.userdata.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if data.is_empty() {
            return Ok(None);
        }
        // Base64 may have been wrapped into lines by the tool that produced it.
        let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|source| PlatformError::Decode {
                what: format!("the {USERDATA_ENV} environment variable"),
                source,
            })?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }
}

impl Platform for Container {
    fn name(&self) -> &str {
        "container"
    }

    fn mode(&self) -> Mode {
        Mode::Container
    }

    fn configuration(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>, PlatformError>> {
        Box::pin(async move { self.decode() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userdata_is_decoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(b"version: v1alpha1\n");
        let wrapped = format!("{}\n{}", &encoded[..8], &encoded[8..]);
        let c = Container::new(Some(wrapped));
        assert_eq!(
            c.decode().expect("valid"),
            Some(b"version: v1alpha1\n".to_vec())
        );
    }

    #[test]
    fn absent_or_empty_userdata_is_no_config() {
        assert_eq!(Container::new(None).decode().expect("none"), None);
        assert_eq!(
            Container::new(Some("  ".into())).decode().expect("none"),
            None
        );
    }

    #[test]
    fn invalid_base64_is_a_clear_error() {
        let err = Container::new(Some("not base64!".into()))
            .decode()
            .expect_err("invalid");
        assert!(err.to_string().contains("USERDATA"), "{err}");
    }

    #[tokio::test]
    async fn configuration_is_async_decode() {
        let c = Container::new(Some("aGk=".into()));
        assert_eq!(c.configuration().await.expect("ok"), Some(b"hi".to_vec()));
        assert_eq!(c.name(), "container");
    }
}
