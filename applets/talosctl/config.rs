//! `talosctl config`: manage the client configuration file (talosconfig).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use clap::Subcommand;
use serde::Serialize;
use talos::client::talosconfig::{self, ConfigPath, TalosConfig};

/// `talosctl config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Add a new context.
    Add {
        /// Name of the new context.
        context: String,
        /// The path to the CA certificate.
        #[arg(long, default_value = "")]
        ca: String,
        /// The path to the certificate.
        #[arg(long, default_value = "")]
        crt: String,
        /// The path to the key.
        #[arg(long, default_value = "")]
        key: String,
    },
    /// Set the current context.
    #[command(visible_alias = "use-context")]
    Context {
        /// The context to make current.
        context: String,
    },
    /// List defined contexts.
    #[command(visible_alias = "get-contexts")]
    Contexts,
    /// Set the endpoint(s) for the current context.
    #[command(visible_alias = "endpoints")]
    Endpoint {
        /// Endpoints (host or host:port).
        #[arg(required = true, value_name = "endpoint")]
        endpoints: Vec<String>,
    },
    /// Show information about the current context.
    Info {
        /// Output format (json|yaml|text). Default text.
        #[arg(short = 'o', long, default_value = "text")]
        output: String,
    },
    /// Merge additional contexts from another client configuration file.
    ///
    /// Contexts with the same name are renamed while merging configs.
    Merge {
        /// The talosconfig to merge in (extra arguments are ignored, as in Talos).
        #[arg(required = true, num_args = 1.., value_name = "from")]
        from: Vec<PathBuf>,
    },
    /// Set the node(s) for the current context.
    #[command(visible_alias = "nodes")]
    Node {
        /// Nodes (none clears the list).
        #[arg(value_name = "endpoint")]
        nodes: Vec<String>,
    },
    /// Remove contexts.
    Remove {
        /// Context name or glob pattern (`*` matches any text).
        context: String,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        noconfirm: bool,
        /// Dry run.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs a `config` subcommand.
pub fn run(cmd: ConfigCmd, global: &super::Global) -> anyhow::Result<()> {
    let explicit = explicit_path(global);
    let explicit = explicit.as_deref();
    let cmd_context = global.context.as_deref();
    match cmd {
        ConfigCmd::Add {
            context,
            ca,
            crt,
            key,
        } => add(explicit, &context, &ca, &crt, &key),
        ConfigCmd::Context { context } => {
            let (mut cfg, location) = open_with_context(explicit, &context)?;
            cfg.context = context;
            save(&cfg, &location)
        }
        ConfigCmd::Contexts => {
            let (cfg, _) = open(explicit)?;
            print!("{}", contexts_table(&cfg));
            Ok(())
        }
        ConfigCmd::Endpoint { endpoints } => {
            let (mut cfg, location) = open_with_context(explicit, "")?;
            cfg.context_data_mut(cmd_context)?.endpoints = trimmed(endpoints);
            save(&cfg, &location)
        }
        ConfigCmd::Node { nodes } => {
            let (mut cfg, location) = open_with_context(explicit, "")?;
            cfg.context_data_mut(cmd_context)?.nodes = trimmed(nodes);
            save(&cfg, &location)
        }
        ConfigCmd::Info { output } => {
            let (cfg, _) = open_with_context(explicit, "")?;
            info(&cfg, cmd_context, &output)
        }
        ConfigCmd::Merge { from } => merge(explicit, &from[0]),
        ConfigCmd::Remove {
            context,
            noconfirm,
            dry_run,
        } => remove(explicit, &context, noconfirm, dry_run),
    }
}

/// The `--talosconfig` path when the user gave one. clap also fills the flag from
/// `$TALOSCONFIG`; that case is left to the lookup rules (a missing `$TALOSCONFIG` file falls
/// through to `~/.talos/config`, as in Talos).
fn explicit_path(global: &super::Global) -> Option<PathBuf> {
    let flag = global.talosconfig.clone()?;
    match std::env::var_os(talosconfig::TALOSCONFIG_ENV) {
        Some(env) if env == flag.as_os_str() => None,
        _ => Some(flag),
    }
}

fn open(explicit: Option<&Path>) -> anyhow::Result<(TalosConfig, ConfigPath)> {
    talosconfig::open(explicit).context("error reading config")
}

fn open_with_context(
    explicit: Option<&Path>,
    context: &str,
) -> anyhow::Result<(TalosConfig, ConfigPath)> {
    let (cfg, location) = open(explicit)?;
    cfg.require_context(context)?;
    Ok((cfg, location))
}

fn save(cfg: &TalosConfig, location: &ConfigPath) -> anyhow::Result<()> {
    cfg.save_to(location).context("error writing config")
}

fn trimmed(items: Vec<String>) -> Vec<String> {
    items.into_iter().map(|s| s.trim().to_string()).collect()
}

fn read_base64(path: &str, what: &str) -> anyhow::Result<String> {
    let data = std::fs::read(path).with_context(|| format!("error reading {what} {path}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(data))
}

fn add(explicit: Option<&Path>, name: &str, ca: &str, crt: &str, key: &str) -> anyhow::Result<()> {
    let (mut cfg, location) = open(explicit)?;
    let mut ctx = talosconfig::Context::default();
    if !ca.is_empty() {
        ctx.ca = read_base64(ca, "CA")?;
    }
    match (crt.is_empty(), key.is_empty()) {
        (true, true) => {}
        (false, false) => {
            ctx.crt = read_base64(crt, "certificate")?;
            ctx.key = read_base64(key, "key")?;
        }
        _ => bail!("if either the 'crt' or 'key' flag is specified, both are required"),
    }
    cfg.contexts.insert(name.to_string(), ctx);
    save(&cfg, &location)
}

fn merge(explicit: Option<&Path>, from: &Path) -> anyhow::Result<()> {
    let (mut cfg, location) = open(explicit)?;
    let (other, _) = open(Some(from))?;
    for rename in cfg.merge(other) {
        eprintln!("renamed talosconfig context {rename}");
    }
    save(&cfg, &location)
}

/// Glob matching as talosctl does it: `*` matches any run of characters, nothing else is
/// special.
fn glob_match(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == subject;
    }
    let leading = pattern.starts_with('*');
    let trailing = pattern.ends_with('*');
    let last = parts.len() - 1;
    let mut rest = subject;
    for (i, part) in parts[..last].iter().enumerate() {
        match rest.find(part) {
            Some(idx) if i > 0 || leading || idx == 0 => rest = &rest[idx + part.len()..],
            _ => return false,
        }
    }
    trailing || rest.ends_with(parts[last])
}

fn confirm(prompt: &str) -> bool {
    print!("{prompt} (y/N): ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    let answer = line.split_whitespace().next().unwrap_or("");
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

fn remove(
    explicit: Option<&Path>,
    pattern: &str,
    noconfirm: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    if pattern.is_empty() {
        bail!("no context specified");
    }
    let (mut cfg, location) = open(explicit)?;
    if cfg.contexts.is_empty() {
        bail!("no contexts defined");
    }
    let matches: Vec<String> = cfg
        .contexts
        .keys()
        .filter(|name| glob_match(pattern, name))
        .cloned()
        .collect();
    if matches.is_empty() {
        bail!("no contexts matched {pattern:?}");
    }
    let mut changed = false;
    for name in matches {
        if name == cfg.context {
            eprintln!(
                "skipping removal of current context {name:?}, please change it to another before removing"
            );
            continue;
        }
        if noconfirm {
            eprintln!("removing context {name:?}");
        } else if !confirm(&format!("remove context {name:?}?")) {
            continue;
        }
        changed = true;
        cfg.contexts.remove(&name);
    }
    if dry_run || !changed {
        return Ok(());
    }
    save(&cfg, &location)
}

/// The `config contexts` table, aligned like Go's tabwriter (padding 3).
fn contexts_table(cfg: &TalosConfig) -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        "CURRENT".into(),
        "NAME".into(),
        "ENDPOINTS".into(),
        "NODES".into(),
    ]];
    for (name, ctx) in &cfg.contexts {
        let current = if *name == cfg.context { "*" } else { "" };
        let nodes = if ctx.nodes.len() > 3 {
            format!("{}...", ctx.nodes[..3].join(","))
        } else {
            ctx.nodes.join(",")
        };
        rows.push([current.into(), name.clone(), ctx.endpoints.join(","), nodes]);
    }
    let mut widths = [0usize; 3];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (w, cell) in widths.iter().zip(row.iter()) {
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(&row[3]);
        out.push('\n');
    }
    out
}

/// What `config info` reports.
#[derive(Debug, Serialize)]
struct Info {
    context: String,
    nodes: Option<Vec<String>>,
    endpoints: Vec<String>,
    roles: Option<Vec<String>>,
    #[serde(rename = "certTTL")]
    cert_ttl: String,
    #[serde(rename = "certNotAfter")]
    cert_not_after: String,
}

fn gather_info(
    cfg: &TalosConfig,
    cmd_context: Option<&str>,
    now: time::OffsetDateTime,
) -> anyhow::Result<Info> {
    let ctx = cfg.context_data(cmd_context)?;
    let mut info = Info {
        context: cfg.context.clone(),
        nodes: (!ctx.nodes.is_empty()).then(|| ctx.nodes.clone()),
        endpoints: ctx.endpoints.clone(),
        roles: None,
        cert_ttl: String::new(),
        cert_not_after: String::new(),
    };
    if !ctx.crt.is_empty() {
        let cert = talosconfig::client_cert_info(&ctx.crt)?;
        info.roles = (!cert.roles.is_empty()).then_some(cert.roles);
        info.cert_ttl = rel_time(cert.not_after, now);
        info.cert_not_after = format!(
            "{:04}-{:02}-{:02}",
            cert.not_after.year(),
            u8::from(cert.not_after.month()),
            cert.not_after.day()
        );
    }
    Ok(info)
}

fn info_text(info: &Info) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "not defined".to_string()
        } else {
            items.join(", ")
        }
    };
    let mut out = format!(
        "Current context:     {}\nNodes:               {}\nEndpoints:           {}",
        info.context,
        list(info.nodes.as_deref().unwrap_or_default()),
        list(&info.endpoints)
    );
    if let Some(roles) = &info.roles {
        out.push_str(&format!("\nRoles:               {}", roles.join(", ")));
    }
    if !info.cert_ttl.is_empty() {
        out.push_str(&format!(
            "\nCertificate expires: {} ({})",
            info.cert_ttl, info.cert_not_after
        ));
    }
    out.push('\n');
    out
}

fn info(cfg: &TalosConfig, cmd_context: Option<&str>, output: &str) -> anyhow::Result<()> {
    let render = |info: &Info| -> anyhow::Result<String> {
        Ok(match output {
            "text" => info_text(info),
            "json" => serde_json::to_string_pretty(info)? + "\n",
            "yaml" => {
                // Empty lists are written as `[]` in YAML, as Go's encoder does for nil slices.
                let mut v = serde_yaml::to_value(info)?;
                if let serde_yaml::Value::Mapping(m) = &mut v {
                    for (_, val) in m.iter_mut() {
                        if val.is_null() {
                            *val = serde_yaml::Value::Sequence(Vec::new());
                        }
                    }
                }
                talos::yaml::emit(&v)
            }
            other => bail!("unknown output format: {other:?}"),
        })
    };
    if !matches!(output, "text" | "json" | "yaml") {
        bail!("unknown output format: {output:?}");
    }
    let info = gather_info(cfg, cmd_context, time::OffsetDateTime::now_utc())?;
    print!("{}", render(&info)?);
    Ok(())
}

/// Relative time as go-humanize's `RelTime(then, now, "ago", "from now")` writes it.
fn rel_time(then: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    const SECOND: i128 = 1_000_000_000;
    const MINUTE: i128 = 60 * SECOND;
    const HOUR: i128 = 60 * MINUTE;
    const DAY: i128 = 24 * HOUR;
    const WEEK: i128 = 7 * DAY;
    const MONTH: i128 = 30 * DAY;
    const YEAR: i128 = 12 * MONTH;
    const LONG_TIME: i128 = 37 * YEAR;
    // (upper bound, format, divisor); `{n}` is the quantity, `{l}` the label.
    const MAGNITUDES: &[(i128, &str, i128)] = &[
        (SECOND, "now", SECOND),
        (2 * SECOND, "1 second {l}", 1),
        (MINUTE, "{n} seconds {l}", SECOND),
        (2 * MINUTE, "1 minute {l}", 1),
        (HOUR, "{n} minutes {l}", MINUTE),
        (2 * HOUR, "1 hour {l}", 1),
        (DAY, "{n} hours {l}", HOUR),
        (2 * DAY, "1 day {l}", 1),
        (WEEK, "{n} days {l}", DAY),
        (2 * WEEK, "1 week {l}", 1),
        (MONTH, "{n} weeks {l}", WEEK),
        (2 * MONTH, "1 month {l}", 1),
        (YEAR, "{n} months {l}", MONTH),
        (18 * MONTH, "1 year {l}", 1),
        (2 * YEAR, "2 years {l}", 1),
        (LONG_TIME, "{n} years {l}", YEAR),
        (i64::MAX as i128, "a long while {l}", 1),
    ];
    let (label, diff) = if then > now {
        ("from now", (then - now).whole_nanoseconds())
    } else {
        ("ago", (now - then).whole_nanoseconds())
    };
    // Go durations saturate at the int64 range.
    let diff = diff.min(i64::MAX as i128);
    let (_, format, div) = MAGNITUDES
        .iter()
        .find(|(bound, _, _)| *bound > diff)
        .unwrap_or(&MAGNITUDES[MAGNITUDES.len() - 1]);
    format
        .replace("{n}", &(diff / div).to_string())
        .replace("{l}", label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("a*", "abc"));
        assert!(glob_match("*c", "abc"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*c", "abbbd"));
        assert!(glob_match("*b*", "abc"));
        assert!(!glob_match("b*", "abc"));
        assert!(!glob_match("", "abc"));
    }

    #[test]
    fn humanized() {
        let now = time::macros::datetime!(2024-01-01 0:00 UTC);
        let d = |s: i64| now + time::Duration::seconds(s);
        assert_eq!(rel_time(now, now), "now");
        assert_eq!(rel_time(d(1), now), "1 second from now");
        assert_eq!(rel_time(d(-45), now), "45 seconds ago");
        assert_eq!(rel_time(d(3 * 3600), now), "3 hours from now");
        assert_eq!(rel_time(d(364 * 86400), now), "1 year from now");
        assert_eq!(rel_time(d(300 * 86400), now), "10 months from now");
        assert_eq!(rel_time(d(10 * 365 * 86400), now), "10 years from now");
        assert_eq!(rel_time(d(-20 * 86400), now), "2 weeks ago");
    }

    #[test]
    fn table_alignment() {
        let cfg = TalosConfig::from_yaml(
            "context: a\ncontexts:\n  a: {endpoints: [1.1.1.1, 2.2.2.2], nodes: [n1, n2, n3, n4]}\n  bb: {endpoints: []}\n",
        )
        .unwrap();
        assert_eq!(
            contexts_table(&cfg),
            "CURRENT   NAME   ENDPOINTS         NODES\n\
             *         a      1.1.1.1,2.2.2.2   n1,n2,n3...\n          \
             bb                       \n"
        );
    }
}
