//! `talosctl version`: the client's version and, per node, the server's.

use talos::api::machine as pb;

use super::session::{self, NodeErrors, Session};
use super::Global;

/// Flags of `version`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Print client version only.
    #[arg(long)]
    client: bool,
    /// Print the short version.
    #[arg(long)]
    short: bool,
    /// Use Talos maintenance mode API.
    #[arg(short = 'i', long)]
    insecure: bool,
}

/// Talos's long version block (tab-indented lines).
pub fn long_version(v: &pb::VersionInfo) -> String {
    format!(
        "\tTag:         {}\n\tSHA:         {}\n\tBuilt:       {}\n\tGo version:  {}\n\tOS/Arch:     {}/{}\n",
        v.tag, v.sha, v.built, v.go_version, v.os, v.arch
    )
}

/// Runs `version`.
pub fn run(args: VersionArgs, global: &Global) -> anyhow::Result<()> {
    println!("Client:");
    if args.short {
        println!("Talos {}", talos::version::TALOS_VERSION);
    } else {
        print!("{}", long_version(&talos::version::version_info()));
    }
    if args.client {
        return Ok(());
    }
    println!("Server:");
    let insecure: Option<&[String]> = if args.insecure { Some(&[]) } else { None };
    session::runtime()?.block_on(async {
        let s = Session::open(global, insecure).await?;
        let resp = s
            .client
            .machine()
            .version(s.request(())?)
            .await
            .map_err(|e| session::call_error("error getting version", e))?
            .into_inner();
        let mut errors = NodeErrors::default();
        let messages = session::partition(&s, &mut errors, resp.messages, |m| m.metadata.as_ref());
        for msg in messages {
            println!("\tNODE:        {}", s.node_of(msg.metadata.as_ref()));
            print!("{}", long_version(&msg.version.unwrap_or_default()));
            let enabled = if msg.features.is_some_and(|f| f.rbac) {
                "RBAC"
            } else {
                ""
            };
            println!("\tEnabled:     {enabled}");
        }
        errors.finish()
    })
}
