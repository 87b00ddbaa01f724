//! Text output helpers matching talosctl's: Go `text/tabwriter` alignment (padding 3, spaces),
//! go-humanize sizes and relative times, and Go file mode strings (Go durations are
//! [`talos::duration::GoDuration`]).

/// Column aligner with the semantics of Go's `tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)`:
/// cells are tab-terminated; the text after the last tab of a line is not part of a column;
/// a column block is a run of consecutive lines having that column; a line without any tab
/// ends all blocks.
#[derive(Debug, Default)]
pub struct TabWriter {
    lines: Vec<Vec<String>>,
    out: String,
}

const PADDING: usize = 3;

fn width(s: &str) -> usize {
    s.chars().count()
}

impl TabWriter {
    /// An empty writer.
    pub fn new() -> TabWriter {
        TabWriter::default()
    }

    /// Adds text; each `\n` ends a line.
    pub fn write(&mut self, text: &str) {
        let mut rest = text;
        while let Some(pos) = rest.find('\n') {
            self.push_partial(&rest[..pos]);
            self.end_line();
            rest = &rest[pos + 1..];
        }
        if !rest.is_empty() {
            self.push_partial(rest);
        }
    }

    /// Adds one line (a newline is appended).
    pub fn line(&mut self, text: &str) {
        self.write(text);
        self.write("\n");
    }

    /// Adds one line made of the given cells, tab separated.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let joined: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
        self.line(&joined.join("\t"));
    }

    fn current(&mut self) -> &mut Vec<String> {
        if self.lines.is_empty() {
            self.lines.push(vec![String::new()]);
        }
        let last = self.lines.len() - 1;
        &mut self.lines[last]
    }

    fn push_partial(&mut self, text: &str) {
        let mut parts = text.split('\t');
        if let Some(first) = parts.next() {
            let line = self.current();
            if let Some(cell) = line.last_mut() {
                cell.push_str(first);
            }
            for part in parts {
                line.push(part.to_string());
            }
        }
    }

    fn end_line(&mut self) {
        let single = self.current().len() == 1;
        self.lines.push(vec![String::new()]);
        if single {
            self.flush_lines();
        }
    }

    fn flush_lines(&mut self) {
        // The last entry is the (possibly empty) line being built.
        let mut lines = std::mem::take(&mut self.lines);
        let pending = lines.pop();
        let mut widths = Vec::new();
        let n = lines.len();
        format_block(&mut self.out, &lines, &mut widths, 0, n, true);
        if let Some(p) = pending {
            if p.len() > 1 || p.first().is_some_and(|c| !c.is_empty()) {
                self.lines.push(p);
            }
        }
    }

    /// Formats everything written so far and returns it (a trailing partial line included).
    pub fn finish(mut self) -> String {
        let partial = self
            .lines
            .last()
            .is_some_and(|l| l.len() > 1 || l.first().is_some_and(|c| !c.is_empty()));
        if partial {
            // Format the partial line as a complete one, then drop the newline.
            self.lines.push(vec![String::new()]);
            self.flush_lines();
            if self.out.ends_with('\n') {
                self.out.pop();
            }
        } else {
            self.flush_lines();
        }
        self.out
    }

    /// Formats and prints everything to stdout.
    pub fn print(self) {
        print!("{}", self.finish());
    }
}

fn format_block(
    out: &mut String,
    lines: &[Vec<String>],
    widths: &mut Vec<usize>,
    mut line0: usize,
    line1: usize,
    _top: bool,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(out, lines, widths, line0, this);
        line0 = this;
        let mut w = 0;
        while this < line1 && column + 1 < lines[this].len() {
            w = w.max(width(&lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(w);
        format_block(out, lines, widths, line0, this, false);
        widths.pop();
        line0 = this;
    }
    write_lines(out, lines, widths, line0, line1);
}

fn write_lines(out: &mut String, lines: &[Vec<String>], widths: &[usize], from: usize, to: usize) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() {
                if let Some(w) = widths.get(j) {
                    for _ in width(cell)..*w {
                        out.push(' ');
                    }
                }
            }
        }
        out.push('\n');
    }
}

/// go-humanize `Bytes`: SI units, e.g. `512 B`, `1.2 kB`, `13 MB`.
pub fn humanize_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let f = n as f64;
    let exp = (f.ln() / 1000f64.ln()).floor() as usize;
    let exp = exp.min(UNITS.len() - 1);
    let val = (f / 1000f64.powi(exp as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", UNITS[exp])
    } else {
        format!("{val:.0} {}", UNITS[exp])
    }
}

/// go-humanize `Time`: a relative time such as `3 minutes ago` or `2 days from now`.
pub fn humanize_time(seconds_ago: i64) -> String {
    let (d, suffix) = if seconds_ago >= 0 {
        (seconds_ago, "ago")
    } else {
        (-seconds_ago, "from now")
    };
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    const WEEK: i64 = 7 * DAY;
    const MONTH: i64 = 30 * DAY;
    const YEAR: i64 = 12 * MONTH;
    let (n, unit) = match d {
        0 => return "now".to_string(),
        d if d < 2 => return format!("1 second {suffix}"),
        d if d < MINUTE => (d, "seconds"),
        d if d < 2 * MINUTE => return format!("1 minute {suffix}"),
        d if d < HOUR => (d / MINUTE, "minutes"),
        d if d < 2 * HOUR => return format!("1 hour {suffix}"),
        d if d < DAY => (d / HOUR, "hours"),
        d if d < 2 * DAY => return format!("1 day {suffix}"),
        d if d < WEEK => (d / DAY, "days"),
        d if d < 2 * WEEK => return format!("1 week {suffix}"),
        d if d < MONTH => (d / WEEK, "weeks"),
        d if d < 2 * MONTH => return format!("1 month {suffix}"),
        d if d < YEAR => (d / MONTH, "months"),
        d if d < 18 * MONTH => return format!("1 year {suffix}"),
        d if d < 2 * YEAR => return format!("2 years {suffix}"),
        d if d < 37 * YEAR => (d / YEAR, "years"),
        _ => return "a long while ago".to_string(),
    };
    format!("{n} {unit} {suffix}")
}

/// Go's `os.FileMode.String()` (the mode travels in Go's bit layout).
pub fn go_file_mode(mode: u32) -> String {
    const LETTERS: &[u8] = b"dalTLDpSugct?";
    let mut out = String::new();
    for (i, c) in LETTERS.iter().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            out.push(char::from(*c));
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    const RWX: &[u8] = b"rwxrwxrwx";
    for (i, c) in RWX.iter().enumerate() {
        if mode & (1 << (8 - i)) != 0 {
            out.push(char::from(*c));
        } else {
            out.push('-');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_aligns_like_go() {
        let mut w = TabWriter::new();
        w.line("NODE\tNAME");
        w.line("10.0.0.1\ta");
        w.line("n\tlonger-name");
        assert_eq!(
            w.finish(),
            "NODE       NAME\n10.0.0.1   a\nn          longer-name\n"
        );
    }

    #[test]
    fn tabwriter_blocks() {
        // Lines with fewer cells end the inner column block; a tab-less line flushes.
        let mut w = TabWriter::new();
        w.line("a\tb\tc");
        w.line("aaaa\tb");
        w.line("x\tyyyyyy\tz");
        w.line("plain");
        w.line("k\tv");
        let got = w.finish();
        assert_eq!(
            got, "a      b   c\naaaa   b\nx      yyyyyy   z\nplain\nk   v\n",
            "{got}"
        );
    }

    #[test]
    fn tabwriter_trailing_empty_cell() {
        let mut w = TabWriter::new();
        w.line("ID\tx\t");
        w.line("IDENT\ty\t");
        assert_eq!(w.finish(), "ID      x   \nIDENT   y   \n");
    }

    #[test]
    fn humanize() {
        assert_eq!(humanize_bytes(0), "0 B");
        assert_eq!(humanize_bytes(999), "999 B");
        assert_eq!(humanize_bytes(1234), "1.2 kB");
        assert_eq!(humanize_bytes(12_345_678), "12 MB");
        assert_eq!(humanize_bytes(1_000_000_000), "1.0 GB");
        assert_eq!(humanize_time(0), "now");
        assert_eq!(humanize_time(30), "30 seconds ago");
        assert_eq!(humanize_time(3 * 3600), "3 hours ago");
        assert_eq!(humanize_time(-90), "1 minute from now");
        assert_eq!(talos::duration::signed_seconds(0), "0s");
        assert_eq!(talos::duration::signed_seconds(300), "5m0s");
        assert_eq!(talos::duration::signed_seconds(3723), "1h2m3s");
        assert_eq!(go_file_mode(0o755 | 1 << 31), "drwxr-xr-x");
        assert_eq!(go_file_mode(0o644), "-rw-r--r--");
        assert_eq!(go_file_mode(0o777 | 1 << 27), "Lrwxrwxrwx");
    }
}
