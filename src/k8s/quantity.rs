//! Kubernetes resource quantities (`100m`, `512Mi`, `1e9`): enough of
//! `k8s.io/apimachinery/pkg/api/resource` to check a quantity and read its integer value.

/// A quantity that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)]
pub struct QuantityError;

/// The value of a quantity rounded up to an integer (what `Quantity.Value()` returns).
pub fn value(text: &str) -> Result<i128, QuantityError> {
    let (number, suffix) = split(text)?;
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let negative = int_part.starts_with('-');
    let digits: String = int_part
        .trim_start_matches(['+', '-'])
        .chars()
        .chain(frac_part.chars())
        .collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError);
    }
    let mantissa: i128 = digits.parse().map_err(|_| QuantityError)?;
    let (base, exp) = multiplier(suffix)?;
    let frac_digits = i32::try_from(frac_part.len()).map_err(|_| QuantityError)?;
    // value = mantissa * base^exp / 10^frac, rounded up.
    let (mut num, mut den) = (mantissa, 1i128);
    let scale = |v: i128, b: i128, e: i32| -> Option<i128> {
        v.checked_mul(b.checked_pow(u32::try_from(e).ok()?)?)
    };
    if exp >= 0 {
        num = scale(num, base, exp).ok_or(QuantityError)?;
    } else {
        den = scale(den, base, -exp).ok_or(QuantityError)?;
    }
    den = scale(den, 10, frac_digits).ok_or(QuantityError)?;
    let v = (num + den - 1) / den;
    Ok(if negative { -v } else { v })
}

/// Checks a quantity.
pub fn check(text: &str) -> Result<(), QuantityError> {
    value(text).map(|_| ())
}

fn split(text: &str) -> Result<(&str, &str), QuantityError> {
    let end = text
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(end);
    if number.is_empty() {
        return Err(QuantityError);
    }
    Ok((number, suffix))
}

fn multiplier(suffix: &str) -> Result<(i128, i32), QuantityError> {
    Ok(match suffix {
        "" => (10, 0),
        "n" => (10, -9),
        "u" => (10, -6),
        "m" => (10, -3),
        "k" => (10, 3),
        "M" => (10, 6),
        "G" => (10, 9),
        "T" => (10, 12),
        "P" => (10, 15),
        "E" => (10, 18),
        "Ki" => (2, 10),
        "Mi" => (2, 20),
        "Gi" => (2, 30),
        "Ti" => (2, 40),
        "Pi" => (2, 50),
        "Ei" => (2, 60),
        s if s.starts_with(['e', 'E']) => {
            let e: i32 = s[1..].parse().map_err(|_| QuantityError)?;
            (10, e)
        }
        _ => return Err(QuantityError),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(value("512Mi"), Ok(512 << 20));
        assert_eq!(value("1G"), Ok(1_000_000_000));
        assert_eq!(value("100m"), Ok(1));
        assert_eq!(value("1.5Gi"), Ok(3 << 29));
        assert_eq!(value("1e3"), Ok(1000));
        assert_eq!(value("2"), Ok(2));
        assert!(value("abc").is_err());
        assert!(value("1Xi").is_err());
        assert!(value("").is_err());
    }
}
