//! The emitter: lays out a value tree the way Go yaml.v3 does with Talos's settings.

use serde_yaml::Value;

use super::resolve::{format_float, plain_reads_as_string};
use super::PLAIN_TAG;

/// Emits an already-built YAML value tree in Talos's style (one document, ending in a newline).
pub fn emit(value: &Value) -> String {
    emit_with(value, Flavor::TalosV3)
}

/// Emits a value tree the way Kubernetes tools write YAML (`sigs.k8s.io/yaml`, Go yaml.v2):
/// 2-space indentation, and a sequence under a mapping key at the key's own indentation.
pub fn emit_kubernetes(value: &Value) -> String {
    emit_with(value, Flavor::KubernetesV2)
}

/// Which Go YAML encoder's layout to follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// yaml.v3 with Talos's settings (indent 4).
    TalosV3,
    /// yaml.v2 as used by `sigs.k8s.io/yaml` (indent 2, indentless sequences in mappings).
    KubernetesV2,
}

fn emit_with(value: &Value, flavor: Flavor) -> String {
    let mut e = Emitter::new(flavor);
    e.node(value, Ctx::default(), false);
    // Document end: terminate the last line.
    e.indent = -1;
    e.write_indent();
    e.out
}

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
    flavor: Flavor,
    /// The next node is the value of a block mapping entry (yaml.v2 writes a sequence there
    /// without indenting it).
    map_value: bool,
}

impl Emitter {
    fn new(flavor: Flavor) -> Self {
        Emitter {
            out: String::new(),
            column: 0,
            indent: -1,
            whitespace: true,
            indention: true,
            flavor,
            map_value: false,
        }
    }

    /// libyaml's plain rule (yaml.v2): flow scalars and nested blocks indent by 2, a sequence
    /// that is a mapping value does not.
    fn increased_v2(&self, flow: bool, indentless: bool) -> i64 {
        if self.indent < 0 {
            if flow {
                2
            } else {
                0
            }
        } else if indentless {
            self.indent
        } else {
            self.indent + 2
        }
    }

    /// The indentation for a nested node (yaml.v3's regularized rule): the first level inside a
    /// sequence item skips the `- ` indicator; everything else aligns to the next multiple of 4.
    fn increased(&self, flow: bool, in_seq_item: bool) -> i64 {
        if self.flavor == Flavor::KubernetesV2 {
            return self.increased_v2(flow, false);
        }
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
            Value::Tagged(t) => match (&t.value, t.tag == PLAIN_TAG) {
                // A value the typed model wants written verbatim (e.g. a file mode `0o644`).
                (Value::String(s), true) => self.scalar(s, Style::Plain, ctx, in_seq_item),
                _ => self.node(&t.value, ctx, in_seq_item),
            },
        }
    }

    fn block_sequence(&mut self, items: &[Value], in_seq_item: bool) {
        let saved = self.indent;
        self.indent = if self.flavor == Flavor::KubernetesV2 {
            self.increased_v2(false, self.map_value && !self.indention)
        } else {
            self.increased(false, in_seq_item)
        };
        self.map_value = false;
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
        self.map_value = false;
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
            self.map_value = true;
            self.node(v, Ctx::default(), false);
            self.map_value = false;
        }
        self.indent = saved;
    }

    fn scalar(&mut self, text: &str, requested: Style, ctx: Ctx, in_seq_item: bool) {
        self.map_value = false;
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
                let hint = if self.flavor == Flavor::KubernetesV2 {
                    "2"
                } else {
                    "4"
                };
                self.write_indicator(hint, false, false, false);
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
    fn kubernetes_layout() {
        let src = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://x\n  name: c\ncontexts: []\nlist:\n  - a\n  - b: [1, 2]\n    c: |\n      x\n      y\nmap:\n  k: v\n";
        let want = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://x\n  name: c\ncontexts: []\nlist:\n- a\n- b:\n  - 1\n  - 2\n  c: |\n    x\n    y\nmap:\n  k: v\n";
        let v: Value = serde_yaml::from_str(src).expect("valid test yaml");
        assert_eq!(emit_kubernetes(&v), want);
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
}
