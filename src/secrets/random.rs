//! Random material in Talos's formats: raw bytes, kubeadm-style `abcdef.0123456789abcdef` tokens.

use rand::RngCore;

use super::PkiError;

/// Alphabet of bootstrap and trustd tokens.
const TOKEN_ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Bytes at or above this are discarded so that `byte % 36` stays uniform (252 = 7 * 36).
const TOKEN_BYTE_LIMIT: u8 = 252;

/// Fills `buf` from the operating system's random source.
pub fn fill(buf: &mut [u8]) -> Result<(), PkiError> {
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|e| PkiError::Random(e.to_string()))
}

/// `n` random bytes.
pub fn bytes(n: usize) -> Result<Vec<u8>, PkiError> {
    let mut v = vec![0u8; n];
    fill(&mut v)?;
    Ok(v)
}

fn token_part(len: usize) -> Result<String, PkiError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf)?;
        for b in buf {
            if out.len() == len {
                break;
            }
            if b < TOKEN_BYTE_LIMIT {
                out.push(char::from(
                    TOKEN_ALPHABET[usize::from(b) % TOKEN_ALPHABET.len()],
                ));
            }
        }
    }
    Ok(out)
}

/// A token `[0-9a-z]{6}.[0-9a-z]{16}` (Kubernetes bootstrap token and trustd token format).
pub fn token() -> Result<String, PkiError> {
    Ok(format!("{}.{}", token_part(6)?, token_part(16)?))
}

/// Whether `s` has the `[0-9a-z]{6}.[0-9a-z]{16}` token shape.
pub fn is_token(s: &str) -> bool {
    let ok = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    matches!(s.split_once('.'), Some((a, b)) if ok(a, 6) && ok(b, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_kubeadm_shape() {
        for _ in 0..200 {
            let t = token().unwrap();
            assert!(is_token(&t), "{t}");
        }
        assert!(is_token("inn7ol.u4ehnti8qyls9ymo"));
        assert!(!is_token("INN7OL.u4ehnti8qyls9ymo"));
        assert!(!is_token("inn7ol.u4ehnti8qyls9ym"));
        assert!(!is_token("inn7olu4ehnti8qyls9ymo"));
    }

    #[test]
    fn tokens_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            seen.extend(token().unwrap().bytes().filter(|b| *b != b'.'));
        }
        assert_eq!(seen.len(), 36);
    }
}
