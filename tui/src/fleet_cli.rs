//! `memctl server add|remove|list`, and `--server all`: a read-only command run on every
//! server of the fleet, the answers merged with a SERVER column.
//!
//! For `--server all` memctl runs itself once per server (`--server NAME`, all at once),
//! so each server's answer comes from the very code that answers for one server. With
//! `--json` each answer is read back and tagged with `"server"`; tables are printed by the
//! children as cells ([`crate::cli::print_table`]) and drawn here as one table. A server
//! that cannot answer is named on stderr and the others are still shown; the exit status
//! is then the first failure's.

use crate::cli::{self, MERGE_ENV, MERGE_HEADER, MERGE_ROW};
use mem_protocol::{Client, ClientOptions, Endpoint};
use memctl::fleet::{self, Fleet, Server};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

fn fleet_path() -> anyhow::Result<PathBuf> {
    fleet::path().ok_or_else(|| {
        anyhow::anyhow!("no config directory: set HOME or XDG_CONFIG_HOME to keep the fleet")
    })
}

/// `memctl server add NAME [DEST] [--socket PATH] [--ssh-option OPT]... [--memctl CMD]`.
pub fn add(server: Server, json: bool) -> anyhow::Result<()> {
    let path = fleet_path()?;
    let mut fleet = Fleet::load_from(&path)?;
    let replaced = fleet.get(&server.name).is_ok();
    fleet.add(server.clone())?;
    fleet.save_to(&path)?;
    if json {
        return cli::print_json(
            &json!({ "server": server.name, "endpoint": server.endpoint().to_string(), "replaced": replaced }),
        );
    }
    println!(
        "{} server {} ({}) in {}; try `memctl --server {} status`",
        if replaced { "replaced" } else { "added" },
        server.name,
        server.endpoint(),
        path.display(),
        server.name
    );
    Ok(())
}

/// `memctl server remove NAME`.
pub fn remove(name: &str, json: bool) -> anyhow::Result<()> {
    let path = fleet_path()?;
    let mut fleet = Fleet::load_from(&path)?;
    let server = fleet.remove(name)?;
    fleet.save_to(&path)?;
    if json {
        return cli::print_json(&json!({ "removed": server.name }));
    }
    println!("removed server {name}");
    Ok(())
}

/// One server's state, as `memctl server list` shows it.
struct Probe {
    server: Server,
    state: String,
    version: Option<String>,
    access: Option<String>,
}

async fn probe(server: Server) -> Probe {
    let options = ClientOptions {
        client_name: format!("memctl {} (server list)", env!("CARGO_PKG_VERSION")),
        ..ClientOptions::default()
    };
    let connected = tokio::time::timeout(
        Duration::from_secs(20),
        Client::connect_to(&server.endpoint(), options),
    )
    .await;
    match connected {
        Ok(Ok(client)) => {
            let hello = client.hello();
            Probe {
                state: "connected".into(),
                version: Some(hello.server_version.clone()),
                access: serde_json::to_value(hello.access)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from)),
                server,
            }
        }
        Ok(Err(e)) => Probe {
            state: fleet::connection_state(&e),
            version: None,
            access: None,
            server,
        },
        Err(_) => Probe {
            state: "no answer within 20 s".into(),
            version: None,
            access: None,
            server,
        },
    }
}

/// `memctl server list`: every server, where it is, and whether memd answers there.
pub async fn list(json: bool) -> anyhow::Result<()> {
    let fleet = Fleet::load()?;
    let probes = futures::future::join_all(fleet.servers.into_iter().map(probe)).await;
    if json {
        let rows: Vec<Value> = probes
            .iter()
            .map(|p| {
                json!({
                    "server": p.server.name,
                    "endpoint": p.server.endpoint().to_string(),
                    "state": p.state,
                    "version": p.version,
                    "access": p.access,
                })
            })
            .collect();
        return cli::print_json(&rows);
    }
    if probes.is_empty() {
        println!("no server yet: `memctl server add NAME SSH-DESTINATION` (see docs/fleet.md)");
        return Ok(());
    }
    let mut t = cli::table(&["SERVER", "WHERE", "STATE", "MEMD", "ACCESS"]);
    for p in &probes {
        t.add_row(vec![
            p.server.name.clone(),
            p.server.endpoint().to_string(),
            p.state.clone(),
            p.version.clone().unwrap_or_else(|| "-".into()),
            p.access.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    cli::print_table(&t);
    Ok(())
}

/// The command line without `--server X` / `--server=X`.
fn without_server_flag(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip = false;
    for arg in args {
        if skip {
            skip = false;
            continue;
        }
        let text = arg.to_string_lossy();
        if text == "--server" {
            skip = true;
        } else if !text.starts_with("--server=") {
            out.push(arg);
        }
    }
    out
}

/// One server's answer to the command.
struct Answer {
    server: String,
    code: i32,
    stdout: String,
    stderr: String,
}

/// `memctl --server all CMD`: runs CMD on every server at once and merges the answers.
pub async fn all(json: bool) -> ExitCode {
    let fleet = match Fleet::load() {
        Ok(fleet) => fleet,
        Err(e) => {
            eprintln!("memctl: {e:#}");
            return ExitCode::from(crate::exit::USAGE);
        }
    };
    if fleet.servers.is_empty() {
        eprintln!("memctl: --server all: no server yet (`memctl server add NAME SSH-DESTINATION`)");
        return ExitCode::from(crate::exit::USAGE);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("memctl"));
    let args = without_server_flag(std::env::args_os().skip(1));
    let runs = fleet.servers.iter().map(|server| {
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(&args)
            .env("MEMCTL_SERVER", &server.name)
            .env(MERGE_ENV, "1")
            .env_remove("MEMD_SOCKET")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let name = server.name.clone();
        let exe = exe.clone();
        async move {
            match command.output().await {
                Ok(out) => Answer {
                    server: name,
                    code: out.status.code().unwrap_or(1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                },
                Err(e) => Answer {
                    server: name,
                    code: 1,
                    stdout: String::new(),
                    stderr: format!("memctl: cannot run {}: {e}", exe.display()),
                },
            }
        }
    });
    let answers = futures::future::join_all(runs).await;
    for a in answers.iter().filter(|a| a.code != 0) {
        for line in a.stderr.lines().filter(|l| !l.trim().is_empty()) {
            eprintln!("[{}] {}", a.server, line.trim_start_matches("memctl: "));
        }
    }
    if json {
        print_merged_json(&answers);
    } else {
        print_merged_text(&answers);
    }
    match answers.iter().find(|a| a.code != 0) {
        Some(a) => ExitCode::from(a.code.clamp(1, 255) as u8),
        None => ExitCode::SUCCESS,
    }
}

/// Every answer's JSON, each object tagged with its server (arrays are flattened).
fn print_merged_json(answers: &[Answer]) {
    let mut merged = Vec::new();
    for a in answers {
        let tag = |value: Value| match value {
            Value::Object(mut map) => {
                map.insert("server".into(), json!(a.server));
                Value::Object(map)
            }
            other => json!({ "server": a.server, "value": other }),
        };
        if a.code != 0 {
            let error = a
                .stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("failed");
            merged
                .push(json!({ "server": a.server, "error": error.trim_start_matches("memctl: ") }));
            continue;
        }
        match serde_json::from_str::<Value>(&a.stdout) {
            Ok(Value::Array(items)) => merged.extend(items.into_iter().map(tag)),
            Ok(value) => merged.push(tag(value)),
            Err(e) => merged
                .push(json!({ "server": a.server, "error": format!("unreadable answer: {e}") })),
        }
    }
    let _ = cli::print_json(&merged);
}

/// Tables merged into one with a SERVER column; other lines prefixed with the server.
fn print_merged_text(answers: &[Answer]) {
    // The k-th table of every answer becomes the k-th merged table.
    let mut tables: Vec<(Vec<String>, Vec<Vec<String>>)> = Vec::new();
    for a in answers.iter().filter(|a| a.code == 0) {
        let mut index = None::<usize>;
        for line in a.stdout.lines() {
            if let Some(cells) = line.strip_prefix(MERGE_HEADER) {
                let header: Vec<String> = serde_json::from_str(cells).unwrap_or_default();
                let k = index.map_or(0, |k| k + 1);
                index = Some(k);
                if tables.len() <= k {
                    tables.push((header, Vec::new()));
                }
            } else if let Some(cells) = line.strip_prefix(MERGE_ROW) {
                let row: Vec<String> = serde_json::from_str(cells).unwrap_or_default();
                let k = index.unwrap_or(0);
                if tables.len() <= k {
                    tables.push((Vec::new(), Vec::new()));
                }
                tables[k]
                    .1
                    .push(std::iter::once(a.server.clone()).chain(row).collect());
            } else if !line.trim().is_empty() {
                println!("[{}] {line}", a.server);
            }
        }
    }
    for (header, rows) in tables {
        let headers: Vec<&str> = std::iter::once("SERVER")
            .chain(header.iter().map(String::as_str))
            .collect();
        let mut t = cli::table(&headers);
        for row in rows {
            t.add_row(row);
        }
        println!("{t}");
    }
}

/// The endpoint `--server NAME` names.
pub fn endpoint(name: &str) -> anyhow::Result<Endpoint> {
    Ok(Fleet::load()?.get(name)?.endpoint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_flag_is_taken_out_in_both_spellings() {
        let args = ["--server", "all", "deployed", "--json", "--server=all"]
            .map(OsString::from)
            .into_iter();
        assert_eq!(
            without_server_flag(args),
            ["deployed", "--json"].map(OsString::from)
        );
    }
}
