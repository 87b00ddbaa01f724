//! `get <type> [<id>]`: COSI resources (State Get/List/Watch), one node at a time with the
//! `node` metadata (apid does not fan COSI calls out), printed as table, YAML, JSON or JSONPath.

use std::io::Write as _;

use anyhow::Context as _;
use talos::api::cosi::resource as cosi;
use talos::client::connect;
use talos::client::resources::{self, ResourceDefinition};
use tokio_stream::StreamExt as _;

use super::format::TabWriter;
use super::jsonpath::{self, JsonPath};
use super::session::{self, NodeErrors, Session};
use super::Global;

/// Flags of `get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// Resource type (or alias); `rd` lists the resource definitions.
    #[arg(value_name = "TYPE")]
    resource_type: String,
    /// Resource id.
    id: Option<String>,
    /// Resource namespace (default is to use default namespace per resource).
    #[arg(long)]
    namespace: Option<String>,
    /// Output mode (json, table, yaml, jsonpath=<template>).
    #[arg(short = 'o', long, default_value = "table")]
    output: String,
    /// Watch resource changes.
    #[arg(short = 'w', long)]
    watch: bool,
    /// Get resources using the insecure (encrypted with no auth) maintenance service.
    #[arg(short = 'i', long)]
    insecure: bool,
}

/// How resources are printed.
enum Writer {
    Table {
        tw: TabWriter,
        display_type: String,
        columns: Vec<JsonPath>,
        with_events: bool,
    },
    Yaml {
        need_dashes: bool,
        with_events: bool,
    },
    Json {
        with_events: bool,
    },
    Path {
        path: JsonPath,
        with_events: bool,
    },
}

fn event_label(t: cosi::EventType) -> &'static str {
    match t {
        cosi::EventType::Created => "created",
        cosi::EventType::Updated => "updated",
        cosi::EventType::Destroyed => "destroyed",
        cosi::EventType::Bootstrapped => "bootstrapped",
        cosi::EventType::Errored => "errored",
    }
}

fn to_json(v: &serde_yaml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl Writer {
    fn new(output: &str, rd: &ResourceDefinition, with_events: bool) -> anyhow::Result<Writer> {
        Ok(match output {
            "table" => {
                let mut fields: Vec<String> = vec!["NODE".into()];
                if with_events {
                    fields.push("*".into());
                }
                fields.extend(["NAMESPACE", "TYPE", "ID", "VERSION"].map(String::from));
                let mut columns = Vec::new();
                for c in &rd.print_columns {
                    fields.push(c.name.to_uppercase());
                    columns.push(
                        JsonPath::parse(&c.json_path).with_context(|| {
                            format!("error parsing column {:?} jsonpath", c.name)
                        })?,
                    );
                }
                let mut tw = TabWriter::new();
                tw.row(&fields);
                Writer::Table {
                    tw,
                    display_type: rd.display_type.clone(),
                    columns,
                    with_events,
                }
            }
            "yaml" => Writer::Yaml {
                need_dashes: false,
                with_events,
            },
            "json" => Writer::Json { with_events },
            other => match other.strip_prefix("jsonpath=") {
                Some(template) => Writer::Path {
                    path: JsonPath::parse(template)?,
                    with_events,
                },
                None => anyhow::bail!("output format {other:?} is not supported"),
            },
        })
    }

    fn json_data(
        node: &str,
        r: &cosi::Resource,
        event: cosi::EventType,
        with_events: bool,
    ) -> anyhow::Result<serde_json::Value> {
        let mut data = to_json(&resources::resource_value(r)?);
        if let serde_json::Value::Object(map) = &mut data {
            map.insert("node".into(), serde_json::Value::String(node.into()));
            if with_events {
                map.insert("event".into(), event_label(event).into());
            }
        }
        Ok(data)
    }

    fn write(
        &mut self,
        node: &str,
        r: &cosi::Resource,
        event: cosi::EventType,
    ) -> anyhow::Result<()> {
        match self {
            Writer::Table {
                tw,
                display_type,
                columns,
                with_events,
            } => {
                let md = r.metadata.clone().unwrap_or_default();
                let mut values = vec![node.to_string()];
                if *with_events {
                    let label = match event {
                        cosi::EventType::Created => "+",
                        cosi::EventType::Destroyed => "-",
                        cosi::EventType::Updated => " ",
                        _ => return Ok(()),
                    };
                    values.push(label.into());
                }
                values.extend([md.namespace, display_type.clone(), md.id, md.version]);
                let spec = to_json(&resources::spec_value(r)?);
                for c in columns.iter() {
                    values.push(c.render(&spec));
                }
                tw.row(&values);
            }
            Writer::Yaml {
                need_dashes,
                with_events,
            } => {
                let value = resources::resource_yaml_value(r)?;
                let mut out = String::new();
                if *need_dashes {
                    out.push_str("---\n");
                }
                *need_dashes = true;
                out.push_str(&format!("node: {node}\n"));
                if *with_events {
                    out.push_str(&format!("event: {}\n", event_label(event)));
                }
                out.push_str(&talos::yaml::emit(&value));
                print!("{out}");
            }
            Writer::Json { with_events } => {
                let data = Writer::json_data(node, r, event, *with_events)?;
                println!("{}", jsonpath::go_json(&data, true));
            }
            Writer::Path { path, with_events } => {
                let data = Writer::json_data(node, r, event, *with_events)?;
                for group in path.find(&data) {
                    for v in group {
                        match v {
                            serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                                println!("{}", jsonpath::go_json(&v, true));
                            }
                            other => println!("{}", jsonpath::text(&other)),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Writer::Table { tw, .. } = self {
            print!("{}", std::mem::take(tw).finish());
        }
        std::io::stdout().flush().context("error writing to stdout")
    }
}

fn cosi_request<T>(message: T, node: Option<&str>) -> anyhow::Result<tonic::Request<T>> {
    let req = tonic::Request::new(message);
    Ok(match node {
        Some(n) => connect::with_node(req, n)?,
        None => req,
    })
}

async fn list_resources(
    s: &Session,
    node: Option<&str>,
    namespace: &str,
    resource_type: &str,
) -> Result<Vec<cosi::Resource>, tonic::Status> {
    let req = cosi_request(
        cosi::ListRequest {
            namespace: namespace.into(),
            r#type: resource_type.into(),
            options: None,
        },
        node,
    )
    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut stream = s.client.cosi().list(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        if let Some(r) = item?.resource {
            out.push(r);
        }
    }
    Ok(out)
}

/// All resource definitions known to `node`, by id.
async fn definitions(
    s: &Session,
    node: Option<&str>,
) -> anyhow::Result<Vec<(String, ResourceDefinition)>> {
    let items = list_resources(
        s,
        node,
        resources::META_NAMESPACE,
        resources::RESOURCE_DEFINITION_TYPE,
    )
    .await
    .map_err(|e| session::call_error("error listing resource definitions", e))?;
    items
        .iter()
        .map(|r| {
            let id = r
                .metadata
                .as_ref()
                .map(|m| m.id.clone())
                .unwrap_or_default();
            Ok((id, ResourceDefinition::from_resource(r)?))
        })
        .collect()
}

/// Runs `get`.
pub fn run(args: GetArgs, global: &Global) -> anyhow::Result<()> {
    let insecure: Option<&[String]> = if args.insecure { Some(&[]) } else { None };
    session::runtime()?.block_on(async {
        let s = Session::open(global, insecure).await?;
        let nodes: Vec<Option<String>> = if s.nodes.is_empty() {
            vec![None]
        } else {
            s.nodes.iter().cloned().map(Some).collect()
        };
        let first = nodes.first().cloned().flatten();
        let defs = definitions(&s, first.as_deref()).await?;
        let rd = resources::resolve(&defs, &args.resource_type)?.clone();
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| rd.default_namespace.clone());
        let mut out = Writer::new(&args.output, &rd, args.watch)?;
        if args.watch {
            return watch(&s, &nodes, &rd, &namespace, args.id.as_deref(), &mut out).await;
        }
        let mut errors = NodeErrors::default();
        for node in &nodes {
            let label = node.clone().unwrap_or_default();
            match &args.id {
                Some(id) => {
                    let req = cosi_request(
                        cosi::GetRequest {
                            namespace: namespace.clone(),
                            r#type: rd.resource_type.clone(),
                            id: id.clone(),
                            options: None,
                        },
                        node.as_deref(),
                    )?;
                    match s.client.cosi().get(req).await {
                        Ok(resp) => {
                            if let Some(r) = resp.into_inner().resource {
                                out.write(&label, &r, cosi::EventType::Created)?;
                            }
                        }
                        Err(e) => errors.report(&label, &session::status_text(&e)),
                    }
                }
                None => {
                    match list_resources(&s, node.as_deref(), &namespace, &rd.resource_type).await {
                        Ok(items) => {
                            for r in &items {
                                out.write(&label, r, cosi::EventType::Created)?;
                            }
                        }
                        Err(e) => errors.report(&label, &session::status_text(&e)),
                    }
                }
            }
        }
        out.flush()?;
        errors.finish()
    })
}

async fn watch(
    s: &Session,
    nodes: &[Option<String>],
    rd: &ResourceDefinition,
    namespace: &str,
    id: Option<&str>,
    out: &mut Writer,
) -> anyhow::Result<()> {
    let mut streams = tokio_stream::StreamMap::new();
    for node in nodes {
        let label = node.clone().unwrap_or_default();
        let req = cosi_request(
            cosi::WatchRequest {
                namespace: namespace.into(),
                r#type: rd.resource_type.clone(),
                id: id.map(str::to_string),
                options: Some(cosi::WatchOptions {
                    bootstrap_contents: id.is_none(),
                    ..Default::default()
                }),
                api_version: 1,
            },
            node.as_deref(),
        )?;
        let stream = s
            .client
            .cosi()
            .watch(req)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "error setting up watch on node {label}: {}",
                    session::status_text(&e)
                )
            })?
            .into_inner();
        streams.insert(label, stream);
    }
    let mut bootstrapped = id.is_some();
    while let Some((node, item)) = streams.next().await {
        let resp = match item {
            Ok(r) => r,
            Err(e) if e.code() == tonic::Code::Cancelled => break,
            Err(e) => anyhow::bail!("error watching resource: {}", session::status_text(&e)),
        };
        for ev in resp.event {
            let kind = cosi::EventType::try_from(ev.event_type).unwrap_or(cosi::EventType::Updated);
            match kind {
                cosi::EventType::Errored => {
                    anyhow::bail!("error watching resource: {}", ev.error.unwrap_or_default())
                }
                cosi::EventType::Bootstrapped => {
                    bootstrapped = true;
                    out.flush()?;
                }
                _ => {
                    if let Some(r) = &ev.resource {
                        out.write(&node, r, kind)?;
                        if bootstrapped {
                            out.flush()?;
                        }
                    }
                }
            }
        }
    }
    out.flush()
}
