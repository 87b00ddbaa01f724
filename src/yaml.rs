//! YAML output in the style Talos writes (Go `gopkg.in/yaml.v3` as used by Talos's encoder).
//!
//! The layout rules reproduced here:
//! - 4-space indentation; block sequences are indented one step under their key (`    - item`);
//!   a mapping inside a sequence item continues at the item's content column (`- a: 1` / `  b: 2`),
//!   and anything nested deeper aligns to the next multiple of 4.
//! - Empty mappings and sequences are written in flow style: `{}` and `[]`; nulls as `null`.
//! - Strings are plain when they would read back as strings, double-quoted when they would read back
//!   as something else (`""`, `"true"`, `"123"`, `"1.5"`, `"null"`, `"yes"`, timestamps, ...),
//!   single-quoted when plain is not allowed by the syntax (leading indicators, `: `, ` #`, ...),
//!   and multi-line strings are literal blocks (`|`, `|-`, `|+`).
//! - Plain, single- and double-quoted scalars are folded at spaces once a line passes 80 columns.
//! - Mapping keys are written in the order of the value tree (insertion order); the typed config
//!   model sorts free-form maps itself with [`go_key_less`] to match Go's map ordering.

use std::cmp::Ordering;

use serde::Serialize;
use serde_yaml::Value;

/// Errors while encoding a value as YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The value could not be represented as YAML.
    #[error("cannot encode as YAML: {0}")]
    Encode(String),
}

/// Serializes any value to YAML text in Talos's style.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, YamlError> {
    let tree = serde_yaml::to_value(value).map_err(|e| YamlError::Encode(e.to_string()))?;
    Ok(emit(&tree))
}

/// Emits an already-built YAML value tree in Talos's style (one document, ending in a newline).
pub fn emit(value: &Value) -> String {
    let mut e = Emitter::new();
    e.node(value, Ctx::default(), false);
    // Document end: terminate the last line.
    e.indent = -1;
    e.write_indent();
    e.out
}

/// The order Go yaml.v3 uses for map keys: a "natural" order where runs of digits compare as
/// numbers and non-letters sort before letters.
pub fn go_key_less(a: &str, b: &str) -> bool {
    go_key_cmp(a, b) == Ordering::Less
}

/// Total-order form of [`go_key_less`].
pub fn go_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut digits = false;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            digits = ar[i].is_numeric();
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            let a_first = if digits { al } else { bl };
            return if a_first {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        // Both non-letters: compare digit runs numerically.
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].is_ascii_digit() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Returns a copy of `value` where every mapping (recursively) has its keys in Go yaml.v3 order,
/// as Go writes `map[string]interface{}` values.
pub fn sort_maps(value: &Value) -> Value {
    match value {
        Value::Mapping(m) => {
            let mut entries: Vec<(&Value, &Value)> = m.iter().collect();
            entries.sort_by(|(a, _), (b, _)| value_key_cmp(a, b));
            let mut out = serde_yaml::Mapping::with_capacity(entries.len());
            for (k, v) in entries {
                out.insert(k.clone(), sort_maps(v));
            }
            Value::Mapping(out)
        }
        Value::Sequence(s) => Value::Sequence(s.iter().map(sort_maps).collect()),
        Value::Tagged(t) => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: t.tag.clone(),
            value: sort_maps(&t.value),
        })),
        other => other.clone(),
    }
}

fn value_key_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(a), Value::String(b)) => go_key_cmp(a, b),
        (Value::Number(a), Value::Number(b)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => kind_rank(a).cmp(&kind_rank(b)),
    }
}

fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Sequence(_) => 4,
        Value::Mapping(_) => 5,
        Value::Tagged(_) => 6,
    }
}

/// Serde helper: serializes a string-keyed map with its keys in Go yaml.v3 order.
pub fn serialize_sorted<S, V>(
    map: &indexmap::IndexMap<String, V>,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    V: Serialize,
{
    use serde::ser::SerializeMap;
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| go_key_cmp(a, b));
    let mut m = serializer.serialize_map(Some(keys.len()))?;
    for k in keys {
        if let Some(v) = map.get(k) {
            m.serialize_entry(k, v)?;
        }
    }
    m.end()
}

/// Serde helper: serializes a free-form value with all nested mapping keys in Go yaml.v3 order.
pub fn serialize_value_sorted<S>(value: &Value, serializer: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
{
    sort_maps(value).serialize(serializer)
}

// ---------------------------------------------------------------------------------------------
// Scalar resolution: would this text, written plain, read back as something other than a string?
// ---------------------------------------------------------------------------------------------

/// True if `s` can be written as a plain scalar and still read back as the same string
/// (yaml.v3's `resolve` plus its extra checks for YAML 1.1 booleans and base-60 floats).
fn plain_reads_as_string(s: &str) -> bool {
    !resolves_to_non_string(s) && !is_base60_float(s) && !is_old_bool(s)
}

fn resolves_to_non_string(s: &str) -> bool {
    let first = match s.as_bytes().first() {
        None => return true, // empty resolves to null
        Some(b) => *b,
    };
    let hint = match first {
        b'+' | b'-' => 'S',
        b'0'..=b'9' => 'D',
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => 'M',
        b'.' => '.',
        _ => return false,
    };
    const SPECIAL: &[&str] = &[
        "true", "True", "TRUE", "false", "False", "FALSE", "~", "null", "Null", "NULL", ".nan",
        ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
        "-.INF",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    match hint {
        '.' => go_parse_float_ok(s),
        'D' | 'S' => {
            if is_timestamp(s) {
                return true;
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            if go_parse_int_ok(&plain) {
                return true;
            }
            yaml_style_float(&plain) && go_parse_float_ok(&plain)
        }
        _ => false,
    }
}

/// Go `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` succeeds.
fn go_parse_int_ok(s: &str) -> bool {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return false;
    }
    match u128::from_str_radix(digits, radix) {
        Ok(v) => {
            if neg {
                v <= 1u128 << 63
            } else {
                v <= u128::from(u64::MAX)
            }
        }
        Err(_) => false,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go `strconv.ParseFloat(s, 64)` succeeds (for the decimal forms reachable here).
fn go_parse_float_ok(s: &str) -> bool {
    if !yaml_style_float(s) {
        return false;
    }
    match s.parse::<f64>() {
        Ok(v) => v.is_finite(),
        Err(_) => false,
    }
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let n = i - start;
        let ok = match n {
            1 => true,
            2 => b[start] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// yaml.v3 reads `YYYY-M-D` dates and date-times (with `T`/`t` and a zone, or a space and no zone)
/// as timestamps.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    let num = |i: &mut usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        s[start..*i].parse().ok()
    };
    let year: u32 = s[..4].parse().unwrap_or(0);
    let Some(month) = num(&mut i, 2) else {
        return false;
    };
    if i >= b.len() || b[i] != b'-' {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 2) else {
        return false;
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let sep = b[i];
    if sep != b'T' && sep != b't' && sep != b' ' {
        return false;
    }
    i += 1;
    let Some(h) = num(&mut i, 2) else {
        return false;
    };
    if i >= b.len() || b[i] != b':' {
        return false;
    }
    i += 1;
    let Some(m) = num(&mut i, 2) else {
        return false;
    };
    if i >= b.len() || b[i] != b':' {
        return false;
    }
    i += 1;
    let Some(sec) = num(&mut i, 2) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        let start = i + 1;
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if sep == b' ' {
        return i == b.len();
    }
    if i < b.len() && b[i] == b'Z' {
        return i + 1 == b.len();
    }
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        let rest = &b[i + 1..];
        return rest.len() == 5
            && rest[0].is_ascii_digit()
            && rest[1].is_ascii_digit()
            && rest[2] == b':'
            && rest[3].is_ascii_digit()
            && rest[4].is_ascii_digit();
    }
    false
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Formats a float like Go `strconv.FormatFloat(f, 'g', -1, 64)` with yaml.v3's inf/nan names.
fn format_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits and decimal exponent.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // %e form
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
        return out;
    }
    // %f form with exactly the needed decimals.
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The emitter.
// ---------------------------------------------------------------------------------------------

const BEST_INDENT: i64 = 4;
const BEST_WIDTH: usize = 80;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    simple_key: bool,
}

#[derive(Default)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let c = c as u32;
    c == 0x0A
        || (0x20..=0x7E).contains(&c)
        || (0xA0..=0xD7FF).contains(&c)
        || ((0xE000..=0xFFFD).contains(&c) && c != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let mut line_breaks = false;
    let mut special = false;
    let mut tabs = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let mut preceded_by_ws = true;
    let (mut prev_space, mut prev_break) = (false, false);
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_ws = i + 1 >= n || is_blank(chars[i + 1]) || is_break(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_ws => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_indicators = true,
                '#' if preceded_by_ws => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blank(c) || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    whitespace: bool,
    indention: bool,
}

impl Emitter {
    fn new() -> Self {
        Emitter {
            out: String::new(),
            column: 0,
            indent: -1,
            whitespace: true,
            indention: true,
        }
    }

    /// The indentation for a nested node (yaml.v3's regularized rule): the first level inside a
    /// sequence item skips the `- ` indicator; everything else aligns to the next multiple of 4.
    fn increased(&self, flow: bool, in_seq_item: bool) -> i64 {
        if self.indent < 0 {
            if flow {
                BEST_INDENT
            } else {
                0
            }
        } else if in_seq_item {
            self.indent + 2
        } else {
            BEST_INDENT * ((self.indent + BEST_INDENT) / BEST_INDENT)
        }
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn node(&mut self, value: &Value, ctx: Ctx, in_seq_item: bool) {
        match value {
            Value::Null => self.scalar("null", Style::Plain, ctx, in_seq_item),
            Value::Bool(b) => self.scalar(
                if *b { "true" } else { "false" },
                Style::Plain,
                ctx,
                in_seq_item,
            ),
            Value::Number(n) => {
                let text = if let Some(i) = n.as_i64() {
                    i.to_string()
                } else if let Some(u) = n.as_u64() {
                    u.to_string()
                } else {
                    format_float(n.as_f64().unwrap_or(0.0))
                };
                self.scalar(&text, Style::Plain, ctx, in_seq_item)
            }
            Value::String(s) => {
                let style = if s.contains('\n') {
                    Style::Literal
                } else if plain_reads_as_string(s) {
                    Style::Plain
                } else {
                    Style::Double
                };
                self.scalar(s, style, ctx, in_seq_item)
            }
            Value::Sequence(items) => {
                if items.is_empty() {
                    self.write_indicator("[", true, true, false);
                    self.write_indicator("]", false, false, false);
                } else {
                    self.block_sequence(items, in_seq_item);
                }
            }
            Value::Mapping(map) => {
                if map.is_empty() {
                    self.write_indicator("{", true, true, false);
                    self.write_indicator("}", false, false, false);
                } else {
                    self.block_mapping(map, in_seq_item);
                }
            }
            Value::Tagged(t) => match (&t.value, t.tag == crate::config::types::PLAIN_TAG) {
                // A value the typed model wants written verbatim (e.g. a file mode `0o644`).
                (Value::String(s), true) => self.scalar(s, Style::Plain, ctx, in_seq_item),
                _ => self.node(&t.value, ctx, in_seq_item),
            },
        }
    }

    fn block_sequence(&mut self, items: &[Value], in_seq_item: bool) {
        let saved = self.indent;
        self.indent = self.increased(false, in_seq_item);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Ctx::default(), true);
        }
        self.indent = saved;
    }

    fn block_mapping(&mut self, map: &serde_yaml::Mapping, in_seq_item: bool) {
        let saved = self.indent;
        self.indent = self.increased(false, in_seq_item);
        for (k, v) in map {
            self.write_indent();
            if is_simple_key(k) {
                self.node(k, Ctx { simple_key: true }, false);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(k, Ctx::default(), false);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(v, Ctx::default(), false);
        }
        self.indent = saved;
    }

    fn scalar(&mut self, text: &str, requested: Style, ctx: Ctx, in_seq_item: bool) {
        let a = analyze(text);
        let mut style = requested;
        if ctx.simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain_allowed || (text.is_empty() && ctx.simple_key))
        {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || ctx.simple_key) {
            style = Style::Double;
        }
        let saved = self.indent;
        self.indent = self.increased(true, in_seq_item);
        let allow_breaks = !ctx.simple_key;
        match style {
            Style::Plain => self.write_plain(text, allow_breaks),
            Style::Single => self.write_single(text, allow_breaks),
            Style::Double => self.write_double(text, allow_breaks),
            Style::Literal => self.write_literal(text),
        }
        self.indent = saved;
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !value.is_empty() && !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = value.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < n
                    && !next_space
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        // yaml.v3 quirk: a value starting with a byte-order mark has every character escaped.
        let bom = value.starts_with('\u{FEFF}');
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || bom || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let v = c as u32;
                match c {
                    '\0' => self.put('0'),
                    '\u{07}' => self.put('a'),
                    '\u{08}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{0B}' => self.put('v'),
                    '\u{0C}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1B}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{A0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for ch in format!("{v:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i + 1 < n {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        if let Some(&first) = chars.first() {
            if first == ' ' || is_break(first) {
                self.write_indicator("4", false, false, false);
            }
        }
        let chomp = match chars.len() {
            0 => Some("-"),
            n => {
                if !is_break(chars[n - 1]) {
                    Some("-")
                } else if n == 1 || is_break(chars[n - 2]) {
                    Some("+")
                } else {
                    None
                }
            }
        };
        if let Some(ch) = chomp {
            self.write_indicator(ch, false, false, false);
        }
        // Like yaml.v3 (unlike libyaml), no line break is written after the header: the first
        // character ends the header line, so a leading line break of the value is not preserved.
        self.whitespace = true;
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

fn is_simple_key(key: &Value) -> bool {
    match key {
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        Value::String(s) => !analyze(s).multiline && s.len() <= 128,
        Value::Tagged(t) => is_simple_key(&t.value),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> String {
        emit(&serde_yaml::from_str::<Value>(s).expect("valid test yaml"))
    }

    #[test]
    fn nested_layout() {
        let src = "a:\n  b: 1\n  c:\n    - x\n    - k: v\n      l:\n        m: z\n      s:\n        - 1\nd: {}\ne: []\nf: null\n";
        let want = "a:\n    b: 1\n    c:\n        - x\n        - k: v\n          l:\n            m: z\n          s:\n            - 1\nd: {}\ne: []\nf: null\n";
        assert_eq!(y(src), want);
    }

    #[test]
    fn top_level_sequence() {
        assert_eq!(
            y("- a\n- b: c\n  d: e\n- []\n"),
            "- a\n- b: c\n  d: e\n- []\n"
        );
    }

    #[test]
    fn quoting() {
        let cases: &[(&str, &str)] = &[
            ("", "\"\""),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("off", "\"off\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            ("123", "\"123\""),
            ("0x1F", "\"0x1F\""),
            ("1_000", "\"1_000\""),
            ("1.5", "\"1.5\""),
            (".5", "\".5\""),
            ("1e3", "\"1e3\""),
            ("12:30", "\"12:30\""),
            ("2024-01-02", "\"2024-01-02\""),
            ("2024-02-30", "2024-02-30"),
            ("10.244.0.0/16", "10.244.0.0/16"),
            ("1.2.3", "1.2.3"),
            ("-", "'-'"),
            ("- a", "'- a'"),
            ("-a", "-a"),
            ("*x", "'*x'"),
            ("a: b", "'a: b'"),
            ("a:b", "a:b"),
            ("a #b", "'a #b'"),
            ("a#b", "a#b"),
            ("it's", "it's"),
            ("'q'", "'''q'''"),
            (" lead", "' lead'"),
            ("trail ", "'trail '"),
            ("tab\there", "\"tab\\there\""),
            ("https://x:6443", "https://x:6443"),
            ("<<", "<<"),
            ("é", "é"),
            ("😀", "\"\\U0001F600\""),
            ("---", "'---'"),
            ("%x", "'%x'"),
            ("@x", "'@x'"),
            ("[x", "'[x'"),
            ("x]", "x]"),
        ];
        for (input, want) in cases {
            let mut m = serde_yaml::Mapping::new();
            m.insert(Value::String("k".into()), Value::String((*input).into()));
            let got = emit(&Value::Mapping(m));
            assert_eq!(got, format!("k: {want}\n"), "input {input:?}");
        }
    }

    #[test]
    fn literal_blocks() {
        let mut m = serde_yaml::Mapping::new();
        m.insert("a".into(), "line1\nline2".into());
        m.insert("b".into(), "line1\n\nline2\n".into());
        m.insert("c".into(), "x\n\n".into());
        m.insert("d".into(), " indented\nx".into());
        m.insert("e".into(), "trailing \nx".into());
        let got = emit(&Value::Mapping(m));
        let want = "a: |-\n    line1\n    line2\nb: |\n    line1\n\n    line2\nc: |+\n    x\n\nd: |4-\n     indented\n    x\ne: \"trailing \\nx\"\n";
        assert_eq!(got, want);
    }

    #[test]
    fn literal_in_sequence_item() {
        let got = y("- name: a\n  contents: \"x\\ny\\n\"\n");
        assert_eq!(got, "- name: a\n  contents: |\n    x\n    y\n");
        let got = y("k:\n  - name: a\n    contents: \"x\\ny\\n\"\n  - b\n");
        assert_eq!(
            got,
            "k:\n    - name: a\n      contents: |\n        x\n        y\n    - b\n"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(100000.0), "100000");
        assert_eq!(format_float(1000000.0), "1e+06");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(0.00001), "1e-05");
        assert_eq!(format_float(-2.25), "-2.25");
        assert_eq!(format_float(123456.7), "123456.7");
        assert_eq!(format_float(1234567.5), "1.2345675e+06");
        assert_eq!(
            y("a: 1\nb: -2\nc: 1.25\nd: true\n"),
            "a: 1\nb: -2\nc: 1.25\nd: true\n"
        );
    }

    #[test]
    fn long_plain_folds() {
        let words = vec!["word"; 30].join(" ");
        let mut m = serde_yaml::Mapping::new();
        m.insert("k".into(), words.clone().into());
        let got = emit(&Value::Mapping(m));
        assert!(got.contains("\n    word"), "{got}");
        let back: Value = serde_yaml::from_str(&got).expect("reparse");
        assert_eq!(back["k"].as_str(), Some(words.as_str()));
    }

    #[test]
    fn go_key_order() {
        let mut keys = vec!["b", "a10", "a2", "A", "_x", "a", "audit-version", "audit"];
        keys.sort_by(|a, b| go_key_cmp(a, b));
        assert_eq!(
            keys,
            vec!["_x", "A", "a", "a2", "a10", "audit", "audit-version", "b"]
        );
    }

    #[test]
    fn round_trip_random_strings_parse_back() {
        let samples = [
            "a\tb",
            "\u{FEFF}x",
            "x\u{2028}y",
            "k: v #c",
            "? q",
            ": x",
            "a\r\nb",
            "  ",
            "x\n ",
            "0o17",
            "+1",
            "-.5",
            ".inf",
            "1:2:3",
            "0777",
            "09",
        ];
        for s in samples {
            let mut m = serde_yaml::Mapping::new();
            m.insert(s.into(), s.into());
            let text = emit(&Value::Mapping(m));
            let back: Value = serde_yaml::from_str(&text).expect("reparse");
            let (k, v) = back
                .as_mapping()
                .and_then(|m| m.iter().next())
                .expect("one entry");
            assert_eq!(v.as_str(), Some(s), "value {s:?} via {text:?}");
            assert_eq!(k.as_str(), Some(s), "key {s:?} via {text:?}");
        }
    }
}
