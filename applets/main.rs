//! The `talos` multicall binary.
//!
//! The applet is chosen by the basename of `argv[0]` (`/sbin/apid` → apid), or, when the binary is
//! called by its own name, by the first argument (`talos talosctl version --client`). Every
//! applet runs through [`edge::main`]: parse, logging, run, exit code.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

mod apid;
mod edge;
mod init;
mod installer;
mod networkd;
mod talosctl;
mod trustd;

use edge::EXIT_USAGE;

/// An applet entry point: takes its full argument list (argv[0] is the applet name) and returns
/// the process exit code.
type Applet = fn(Vec<OsString>) -> ExitCode;

/// Every applet, by the names it answers to.
const APPLETS: &[(&str, Applet, &str)] = &[
    (
        "init",
        init::main,
        "PID 1: mounts, boot sequence, service supervisor",
    ),
    ("machined", init::main, "alias of init"),
    ("apid", apid::main, "mTLS gRPC API gateway on :50000"),
    (
        "trustd",
        trustd::main,
        "certificate signing for worker nodes on :50001",
    ),
    ("networkd", networkd::main, "links, addresses, routes, DHCP"),
    ("installer", installer::main, "installs the OS to a disk"),
    ("talosctl", talosctl::main, "the Talos CLI"),
];

fn find(name: &str) -> Option<Applet> {
    APPLETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, f, _)| *f)
}

fn basename(arg0: &OsString) -> String {
    Path::new(arg0)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn usage() -> String {
    let mut s = String::from(
        "usage: talos <applet> [args...]   (or call the binary by an applet's name)\n\napplets:\n",
    );
    for (name, _, what) in APPLETS {
        s.push_str(&format!("  {name:<10} {what}\n"));
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let Some(arg0) = args.first() else {
        eprint!("{}", usage());
        return ExitCode::from(EXIT_USAGE);
    };
    let name = basename(arg0);
    if let Some(applet) = find(&name) {
        return applet(args);
    }
    // Called as `talos` (or any other name): the first argument picks the applet.
    let rest: Vec<OsString> = args[1..].to_vec();
    let Some(first) = rest.first() else {
        eprint!("{}", usage());
        return ExitCode::from(EXIT_USAGE);
    };
    match first.to_string_lossy().as_ref() {
        "--list" | "-l" => {
            for (name, _, _) in APPLETS {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        "--help" | "-h" | "help" => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        "--version" | "-V" => {
            println!(
                "talos {} (compatible with Talos {})",
                talos::version::PKG_VERSION,
                talos::version::TALOS_VERSION
            );
            ExitCode::SUCCESS
        }
        other => match find(other) {
            Some(applet) => applet(rest),
            None => {
                eprintln!("talos: unknown applet {other:?}; `talos --list` lists the applets");
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
}
