//! Streams: `dmesg`, `logs`, `events`.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use talos::api::common;
use talos::api::machine as pb;
use tokio_stream::StreamExt as _;

use super::format::TabWriter;
use super::session::{self, NodeErrors, Session};
use super::Global;

/// Flags of `dmesg`.
#[derive(Debug, clap::Args)]
pub struct DmesgArgs {
    /// Specify if the kernel log should be streamed.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Specify if only new messages should be sent (makes sense only when combined with --follow).
    #[arg(long)]
    tail: bool,
}

/// Flags of `logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The service (or container) id.
    id: String,
    /// Use the k8s.io containerd namespace.
    #[arg(short = 'k', long)]
    kubernetes: bool,
    /// Specify if the logs should be streamed.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Lines of log file to display (default is to show from the beginning).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    tail: i32,
}

/// Flags of `events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Show specified number of past events (use -1 to show full history, default is to show no history).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    tail: i32,
    /// Show events for the past duration interval (one second resolution, default is to show no history).
    #[arg(long, value_parser = talos::duration::parse_duration)]
    duration: Option<Duration>,
    /// Show events after the specified event ID (default is to show no history).
    #[arg(long)]
    since: Option<String>,
    /// Filter events by the specified actor ID (default is no filter).
    #[arg(long)]
    actor_id: Option<String>,
}

impl EventsArgs {
    /// `--duration` in whole seconds (0 without it).
    fn tail_seconds(&self) -> anyhow::Result<i32> {
        match self.duration {
            Some(d) => i32::try_from(d.as_secs()).context("--duration is too long"),
            None => Ok(0),
        }
    }
}

fn stream_failed(e: &tonic::Status) -> Option<anyhow::Error> {
    if e.code() == tonic::Code::Cancelled {
        return None;
    }
    Some(anyhow::anyhow!(
        "error streaming results: {}",
        session::status_text(e)
    ))
}

/// Runs `dmesg`.
pub fn dmesg(args: DmesgArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let mut stream = s
            .client
            .machine()
            .dmesg(s.request(pb::DmesgRequest {
                follow: args.follow,
                tail: args.tail,
            })?)
            .await
            .map_err(|e| session::call_error("error getting dmesg", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let mut out = std::io::stdout().lock();
        while let Some(item) = stream.next().await {
            let data = match item {
                Ok(d) => d,
                Err(e) => match stream_failed(&e) {
                    Some(err) => return Err(err),
                    None => break,
                },
            };
            if errors.check(&s, data.metadata.as_ref()) {
                continue;
            }
            if data.bytes.is_empty() {
                continue;
            }
            let node = s.node_of(data.metadata.as_ref());
            out.write_all(node.as_bytes())
                .and_then(|()| out.write_all(b": "))
                .and_then(|()| out.write_all(&data.bytes))
                .and_then(|()| out.flush())
                .context("error writing to stdout")?;
        }
        errors.finish()
    })
}

/// Splits chunks arriving from several nodes into whole lines per node.
#[derive(Debug, Default)]
struct LineSlicer {
    partial: HashMap<String, Vec<u8>>,
    order: Vec<String>,
}

impl LineSlicer {
    fn push(&mut self, node: &str, bytes: &[u8], mut emit: impl FnMut(&str, &[u8])) {
        let buf = self.partial.entry(node.to_string()).or_insert_with(|| {
            self.order.push(node.to_string());
            Vec::new()
        });
        buf.extend_from_slice(bytes);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            emit(node, line);
        }
    }

    fn finish(self, mut emit: impl FnMut(&str, &[u8])) {
        let mut partial = self.partial;
        for node in self.order {
            if let Some(rest) = partial.remove(&node).filter(|r| !r.is_empty()) {
                emit(&node, &rest);
            }
        }
    }
}

/// Runs `logs`.
pub fn logs(args: LogsArgs, global: &Global) -> anyhow::Result<()> {
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let (namespace, driver) = if args.kubernetes {
            ("k8s.io", common::ContainerDriver::Cri)
        } else {
            ("system", common::ContainerDriver::Containerd)
        };
        let mut stream = s
            .client
            .machine()
            .logs(s.request(pb::LogsRequest {
                namespace: namespace.into(),
                id: args.id.clone(),
                driver: driver as i32,
                follow: args.follow,
                tail_lines: args.tail,
            })?)
            .await
            .map_err(|e| session::call_error("error fetching logs", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let mut slicer = LineSlicer::default();
        let mut out = std::io::stdout().lock();
        let mut write_err: Option<std::io::Error> = None;
        let mut emit = |node: &str, line: &[u8]| {
            if write_err.is_some() {
                return;
            }
            let r = out
                .write_all(node.as_bytes())
                .and_then(|()| out.write_all(b": "))
                .and_then(|()| out.write_all(line))
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            if let Err(e) = r {
                write_err = Some(e);
            }
        };
        let mut failure = None;
        while let Some(item) = stream.next().await {
            let data = match item {
                Ok(d) => d,
                Err(e) => {
                    failure = stream_failed(&e).map(|e| e.context("error getting logs"));
                    break;
                }
            };
            if errors.check(&s, data.metadata.as_ref()) {
                continue;
            }
            let node = s.node_of(data.metadata.as_ref());
            slicer.push(&node, &data.bytes, &mut emit);
        }
        slicer.finish(&mut emit);
        if let Some(e) = write_err {
            return Err(e).context("error writing to stdout");
        }
        if let Some(e) = failure {
            return Err(e);
        }
        errors.finish()
    })
}

fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(&E) -> &'static str) -> String {
    E::try_from(value)
        .map(|e| name(&e))
        .map(str::to_string)
        .unwrap_or_else(|_| value.to_string())
}

/// The SOURCE and MESSAGE columns of an event, or `None` for an unknown payload type.
fn describe_event(data: &prost_types::Any) -> anyhow::Result<Option<(String, String)>> {
    let name = data
        .type_url
        .strip_prefix("talos/runtime/")
        .unwrap_or_default();
    let value = data.value.as_slice();
    let described = match name {
        "machine.SequenceEvent" => {
            let e = pb::SequenceEvent::decode(value)?;
            let what = match &e.error {
                Some(err) => format!("error: {}", err.message),
                None => enum_name(e.action, pb::sequence_event::Action::as_str_name),
            };
            (e.sequence, what)
        }
        "machine.PhaseEvent" => {
            let e = pb::PhaseEvent::decode(value)?;
            (
                e.phase,
                enum_name(e.action, pb::phase_event::Action::as_str_name),
            )
        }
        "machine.TaskEvent" => {
            let e = pb::TaskEvent::decode(value)?;
            (
                e.task,
                enum_name(e.action, pb::task_event::Action::as_str_name),
            )
        }
        "machine.ServiceStateEvent" => {
            let e = pb::ServiceStateEvent::decode(value)?;
            let action = enum_name(e.action, pb::service_state_event::Action::as_str_name);
            (e.service, format!("{action}: {}", e.message))
        }
        "machine.ConfigLoadErrorEvent" => {
            let e = pb::ConfigLoadErrorEvent::decode(value)?;
            ("error".to_string(), e.error)
        }
        "machine.ConfigValidationErrorEvent" => {
            let e = pb::ConfigValidationErrorEvent::decode(value)?;
            ("error".to_string(), e.error)
        }
        "machine.AddressEvent" => {
            let e = pb::AddressEvent::decode(value)?;
            (e.hostname, format!("ADDRESSES: {}", e.addresses.join(",")))
        }
        "machine.MachineStatusEvent" => {
            let e = pb::MachineStatusEvent::decode(value)?;
            let stage = enum_name(e.stage, pb::machine_status_event::MachineStage::as_str_name);
            let status = e.status.unwrap_or_default();
            let unmet: Vec<String> = status
                .unmet_conditions
                .into_iter()
                .map(|c| c.name)
                .collect();
            (
                stage,
                format!(
                    "ready: {}, unmet conditions: [{}]",
                    status.ready,
                    unmet.join(" ")
                ),
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(described))
}

/// Runs `events`.
pub fn events(args: EventsArgs, global: &Global) -> anyhow::Result<()> {
    let tail_seconds = args.tail_seconds()?;
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        let mut stream = s
            .client
            .machine()
            .events(s.request(pb::EventsRequest {
                tail_events: args.tail,
                tail_id: args.since.clone().unwrap_or_default(),
                tail_seconds,
                with_actor_id: args.actor_id.clone().unwrap_or_default(),
            })?)
            .await
            .map_err(|e| session::call_error("error fetching events", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let mut w = TabWriter::new();
        w.line("NODE\tID\tEVENT\tACTOR\tSOURCE\tMESSAGE");
        while let Some(item) = stream.next().await {
            let ev = match item {
                Ok(ev) => ev,
                Err(e) => match stream_failed(&e) {
                    Some(err) => return Err(err),
                    None => break,
                },
            };
            if errors.check(&s, ev.metadata.as_ref()) {
                continue;
            }
            let Some(data) = ev.data.as_ref() else {
                continue;
            };
            let Some((source, message)) =
                describe_event(data).with_context(|| format!("cannot decode event {}", ev.id))?
            else {
                continue;
            };
            let node = s.node_of(ev.metadata.as_ref());
            // talosctl's layout: two lines per event, through the same column aligner.
            w.write(&format!(
                "{node}\t{}\t{}\n{}\t{source}\t{message}\n",
                ev.id, data.type_url, ev.actor_id
            ));
            // Flush per event, as talosctl does (the header goes out with the first one).
            let text = std::mem::take(&mut w).finish();
            print!("{text}");
            std::io::stdout()
                .flush()
                .context("error writing to stdout")?;
        }
        errors.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        #[derive(clap::Parser)]
        struct Events {
            #[command(flatten)]
            args: EventsArgs,
        }
        let tail = |d: &str| {
            <Events as clap::Parser>::try_parse_from(["events", "--duration", d])
                .map_err(|e| e.to_string())
                .and_then(|e| e.args.tail_seconds().map_err(|e| e.to_string()))
        };
        assert_eq!(tail("90s").unwrap(), 90);
        assert_eq!(tail("1h30m").unwrap(), 5400);
        assert_eq!(tail("1.5h").unwrap(), 5400);
        assert_eq!(tail("0").unwrap(), 0);
        assert!(tail("10").is_err());
        assert!(tail("5d").is_err());
    }

    #[test]
    fn slicer_joins_chunks_per_node() {
        let mut s = LineSlicer::default();
        let mut got = Vec::new();
        s.push("a", b"one\ntw", |n, l| {
            got.push(format!("{n}:{}", String::from_utf8_lossy(l)))
        });
        s.push("b", b"x\n", |n, l| {
            got.push(format!("{n}:{}", String::from_utf8_lossy(l)))
        });
        s.push("a", b"o\nthree", |n, l| {
            got.push(format!("{n}:{}", String::from_utf8_lossy(l)))
        });
        s.finish(|n, l| got.push(format!("{n}:{}", String::from_utf8_lossy(l))));
        assert_eq!(got, ["a:one", "b:x", "a:two", "a:three"]);
    }

    #[test]
    fn service_event_text() {
        let e = pb::ServiceStateEvent {
            service: "apid".into(),
            action: pb::service_state_event::Action::Running as i32,
            message: "Health check successful".into(),
            health: None,
        };
        let any = prost_types::Any {
            type_url: "talos/runtime/machine.ServiceStateEvent".into(),
            value: e.encode_to_vec(),
        };
        assert_eq!(
            describe_event(&any).unwrap(),
            Some(("apid".into(), "RUNNING: Health check successful".into()))
        );
        let unknown = prost_types::Any {
            type_url: "talos/runtime/machine.Other".into(),
            value: vec![],
        };
        assert_eq!(describe_event(&unknown).unwrap(), None);
    }
}
