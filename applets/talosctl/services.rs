//! `service [<id> [start|stop|restart|status]]`: list services, show one, control it.

use talos::api::machine as pb;

use super::format::TabWriter;
use super::session::{self, NodeErrors, Session};
use super::Global;

/// Arguments of `service`.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// Service id; without it, all services are listed.
    id: Option<String>,
    /// Action: start, stop, restart or status (default).
    action: Option<String>,
}

fn ago(ts: Option<&prost_types::Timestamp>) -> String {
    let secs = ts.map_or(0, |t| {
        // Round to the nearest second, like Go's Duration.Round(time.Second).
        let now = time::OffsetDateTime::now_utc();
        let nanos = now.unix_timestamp_nanos()
            - (i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos));
        i64::try_from((nanos + 500_000_000).div_euclid(1_000_000_000)).unwrap_or_default()
    });
    talos::duration::signed_seconds(secs)
}

fn health(svc: &pb::ServiceInfo) -> &'static str {
    let h = svc.health.clone().unwrap_or_default();
    if h.unknown {
        "?"
    } else if h.healthy {
        "OK"
    } else {
        "Fail"
    }
}

fn events(svc: &pb::ServiceInfo) -> &[pb::ServiceEvent] {
    svc.events.as_ref().map_or(&[], |e| e.events.as_slice())
}

/// Runs `service`.
pub fn run(args: ServiceArgs, global: &Global) -> anyhow::Result<()> {
    let action = args.action.clone().unwrap_or_else(|| "status".to_string());
    if !matches!(action.as_str(), "status" | "start" | "stop" | "restart") {
        anyhow::bail!("unsupported service action: {action:?}");
    }
    session::runtime()?.block_on(async {
        let s = Session::open(global, None).await?;
        match (args.id, action.as_str()) {
            (None, _) => list(&s).await,
            (Some(id), "status") => info(&s, &id).await,
            (Some(id), action) => control(&s, &id, action).await,
        }
    })
}

async fn list(s: &Session) -> anyhow::Result<()> {
    let resp = s
        .client
        .machine()
        .service_list(s.request(())?)
        .await
        .map_err(|e| session::call_error("error listing services", e))?
        .into_inner();
    let mut errors = NodeErrors::default();
    let messages = session::partition(s, &mut errors, resp.messages, |m| m.metadata.as_ref());
    let mut w = TabWriter::new();
    w.line("NODE\tSERVICE\tSTATE\tHEALTH\tLAST CHANGE\tLAST EVENT");
    for msg in &messages {
        let node = s.node_of(msg.metadata.as_ref());
        for svc in &msg.services {
            let evs = events(svc);
            let (changed, last) = match evs.last() {
                Some(e) => (ago(e.ts.as_ref()), e.msg.as_str()),
                None => (String::new(), "<none>"),
            };
            w.line(&format!(
                "{node}\t{}\t{}\t{}\t{changed} ago\t{last}",
                svc.id,
                svc.state,
                health(svc)
            ));
        }
    }
    w.print();
    errors.finish()
}

async fn info(s: &Session, id: &str) -> anyhow::Result<()> {
    let resp = s
        .client
        .machine()
        .service_list(s.request(())?)
        .await
        .map_err(|e| session::call_error("error listing services", e))?
        .into_inner();
    let mut errors = NodeErrors::default();
    let messages = session::partition(s, &mut errors, resp.messages, |m| m.metadata.as_ref());
    let mut w = TabWriter::new();
    let mut found = 0;
    for msg in &messages {
        let node = s.node_of(msg.metadata.as_ref());
        for svc in msg.services.iter().filter(|svc| svc.id == id) {
            found += 1;
            w.line(&format!("NODE\t{node}"));
            w.line(&format!("ID\t{}", svc.id));
            w.line(&format!("STATE\t{}", svc.state));
            w.line(&format!("HEALTH\t{}", health(svc)));
            if let Some(h) = svc.health.as_ref().filter(|h| !h.last_message.is_empty()) {
                w.line(&format!("LAST HEALTH MESSAGE\t{}", h.last_message));
            }
            let mut label = "EVENTS";
            for e in events(svc).iter().rev() {
                w.line(&format!(
                    "{label}\t[{}]: {} ({} ago)",
                    e.state,
                    e.msg,
                    ago(e.ts.as_ref())
                ));
                label = "";
            }
        }
    }
    if found == 0 {
        errors.finish()?;
        anyhow::bail!("service {id:?} is not registered on any nodes");
    }
    w.print();
    errors.finish()
}

async fn control(s: &Session, id: &str, action: &str) -> anyhow::Result<()> {
    let mut client = s.client.machine();
    let replies: Vec<(Option<talos::api::common::Metadata>, String)> = match action {
        "start" => client
            .service_start(s.request(pb::ServiceStartRequest { id: id.into() })?)
            .await
            .map_err(|e| session::call_error("error starting service", e))?
            .into_inner()
            .messages
            .into_iter()
            .map(|m| (m.metadata, m.resp))
            .collect(),
        "stop" => client
            .service_stop(s.request(pb::ServiceStopRequest { id: id.into() })?)
            .await
            .map_err(|e| session::call_error("error stopping service", e))?
            .into_inner()
            .messages
            .into_iter()
            .map(|m| (m.metadata, m.resp))
            .collect(),
        _ => client
            .service_restart(s.request(pb::ServiceRestartRequest { id: id.into() })?)
            .await
            .map_err(|e| session::call_error("error restarting service", e))?
            .into_inner()
            .messages
            .into_iter()
            .map(|m| (m.metadata, m.resp))
            .collect(),
    };
    let mut errors = NodeErrors::default();
    let replies = session::partition(s, &mut errors, replies, |(md, _)| md.as_ref());
    let mut w = TabWriter::new();
    w.line("NODE\tRESPONSE");
    for (md, resp) in &replies {
        w.line(&format!("{}\t{resp}", s.node_of(md.as_ref())));
    }
    w.print();
    errors.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_rounds_to_seconds() {
        let ts = prost_types::Timestamp {
            seconds: time::OffsetDateTime::now_utc().unix_timestamp() - 65,
            nanos: 0,
        };
        let text = ago(Some(&ts));
        assert!(text == "1m5s" || text == "1m6s", "{text}");
    }
}
