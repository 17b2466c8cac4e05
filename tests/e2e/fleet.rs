//! One memctl for a fleet (issue 26), through a real OpenSSH server on loopback
//! ([`mem_e2e::sshd`]) and three real daemons: one reached through its local socket, two
//! through `ssh -T ALIAS memctl bridge` with their own data directories and sockets. The
//! SSH aliases come from an `ssh_config` given to ssh with `-F`, as a trader's own
//! `~/.ssh/config` would be.

use mem_e2e::deployments::{active_deployment, active_deployments, dry_run_on_port};
use mem_e2e::seed::{AGGRESSIVE_RSI, CONSERVATIVE_RSI, MACD_HUNTER, sid};
use mem_e2e::sshd::{self, Sshd};
use mem_e2e::{Daemon, bin, describe, free_port, isolated_command, wait_for};
use mem_protocol::methods::method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

/// A daemon whose bots are the fake Freqtrade; `extra` is more of its config. Answers
/// the daemon and its config file.
fn fake_daemon(extra: &str) -> (Daemon, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        json!({ "fake_bot": {} }),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nport_range = [19900, 19999]",
        extra,
    );
    (Daemon::with_config(root, &config), config)
}

/// memctl with its own config directory (the fleet file lives there).
fn memctl(home: &Path, args: &[&str]) -> Output {
    isolated_command(&bin("memctl"), home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run memctl")
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// `memctl server add NAME ALIAS --socket S -F ...`, running the remote memctl by path.
fn add_ssh_server(
    home: &Path,
    sshd: &Sshd,
    name: &str,
    alias: &str,
    socket: &Path,
    memctl_path: &Path,
) {
    let options = sshd.ssh_options();
    let mut args = vec![
        "server".to_string(),
        "add".into(),
        name.into(),
        alias.into(),
        "--socket".into(),
        socket.display().to_string(),
        "--memctl".into(),
        memctl_path.display().to_string(),
    ];
    for option in &options {
        args.push(format!("--ssh-option={option}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(memctl(home, &args));
}

async fn deploy(daemon: &Daemon, id: &str) {
    daemon
        .client()
        .await
        .call::<method::Deploy>(dry_run_on_port(sid(id), free_port()))
        .await
        .unwrap();
}

/// The strategies of a `deployed --json` answer.
fn strategies(answer: &Value) -> Vec<String> {
    answer["deployments"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|d| d["strategyId"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `(server, its strategies)` of a `--server all deployed --json` answer.
fn servers_of(answers: &Value) -> Vec<(String, Vec<String>)> {
    answers
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["server"].as_str().unwrap().to_string(), strategies(a)))
        .collect()
}

/// The fleet both tests use: `here` through its local socket, `east` and `west` through
/// SSH, each with one bot (Aggressive RSI, MACD Hunter, Conservative RSI), in a fleet
/// file under `home`.
struct ThreeServers {
    sshd: Sshd,
    here: Daemon,
    east: Daemon,
    east_config: PathBuf,
    west: Daemon,
    home: tempfile::TempDir,
    remote_memctl: PathBuf,
}

impl ThreeServers {
    async fn start() -> ThreeServers {
        let sshd = Sshd::start();
        let east_alias = sshd.login("memd-east", None, true);
        let west_alias = sshd.login("memd-west", None, true);
        let (here, _) = fake_daemon("");
        let (east, east_config) = fake_daemon("");
        let (west, _) = fake_daemon("");
        deploy(&here, AGGRESSIVE_RSI).await;
        deploy(&east, MACD_HUNTER).await;
        deploy(&west, CONSERVATIVE_RSI).await;
        let home = tempfile::tempdir().unwrap();
        let remote_memctl = sshd::public_memctl(sshd.dir.path());
        let socket = here.socket.to_str().unwrap();
        ok(memctl(
            home.path(),
            &["server", "add", "here", "--socket", socket],
        ));
        add_ssh_server(
            home.path(),
            &sshd,
            "east",
            &east_alias,
            &east.socket,
            &remote_memctl,
        );
        add_ssh_server(
            home.path(),
            &sshd,
            "west",
            &west_alias,
            &west.socket,
            &remote_memctl,
        );
        ThreeServers {
            sshd,
            here,
            east,
            east_config,
            west,
            home,
            remote_memctl,
        }
    }

    /// Starts east's daemon again after it was killed.
    fn restart_east(&mut self) {
        let config = self.east_config.clone();
        let east = &mut self.east;
        east.child = Daemon::spawn_raw(east.root.path(), &east.socket, &east.data_dir, |cmd| {
            cmd.arg("--config").arg(&config);
        });
        east.wait_ready();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memctl_reaches_each_server_over_ssh_and_all_of_them_at_once() {
    let mut fleet = ThreeServers::start().await;
    let stranger_alias = fleet.sshd.login("memd-stranger", None, false);
    let (sshd, remote_memctl) = (&fleet.sshd, fleet.remote_memctl.clone());
    let home = fleet.home.path().to_path_buf();
    let home = home.as_path();
    add_ssh_server(
        home,
        sshd,
        "stranger",
        &stranger_alias,
        &fleet.west.socket,
        &remote_memctl,
    );
    assert!(
        home.join("xdg-config/memctl/fleet.toml").is_file(),
        "the fleet is kept in memctl's config directory"
    );

    // One server over SSH: only its own bot.
    let answer: Value = serde_json::from_str(&ok(memctl(
        home,
        &["--server", "east", "deployed", "--json"],
    )))
    .unwrap();
    assert_eq!(strategies(&answer), [MACD_HUNTER], "{answer}");

    // Every server: each one's bot tagged with its server; the refused key is named for
    // that server only, and the exit status says something failed.
    let all = memctl(home, &["--server", "all", "deployed", "--json"]);
    assert_eq!(all.status.code(), Some(3), "{}", describe(&all));
    let rows: Value = serde_json::from_slice(&all.stdout).unwrap();
    let s = |id: &str| vec![id.to_string()];
    assert_eq!(
        servers_of(&rows),
        [
            ("here".to_string(), s(AGGRESSIVE_RSI)),
            ("east".to_string(), s(MACD_HUNTER)),
            ("west".to_string(), s(CONSERVATIVE_RSI)),
            ("stranger".to_string(), vec![]),
        ],
        "in the fleet's order: {rows}"
    );
    let stranger = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["server"] == "stranger")
        .unwrap();
    assert!(
        stranger["error"]
            .as_str()
            .unwrap()
            .contains("authentication refused"),
        "{stranger}"
    );
    let stderr = String::from_utf8_lossy(&all.stderr);
    assert!(
        stderr.contains("[stranger]") && stderr.contains("authentication refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("[east]") && !stderr.contains("[west]"),
        "{stderr}"
    );

    // The table has one SERVER column and every server's rows.
    let table = memctl(home, &["--server", "all", "deployed"]);
    let text = String::from_utf8_lossy(&table.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].trim_start().starts_with("SERVER"), "{text}");
    assert_eq!(lines[0].matches("SERVER").count(), 1, "{text}");
    for name in ["here", "east", "west"] {
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.trim_start().starts_with(name))
                .count(),
            1,
            "{name}: {text}"
        );
    }

    // `server list` probes every server.
    let list: Value =
        serde_json::from_str(&ok(memctl(home, &["server", "list", "--json"]))).unwrap();
    let state = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["server"] == name)
            .unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state("here"), "connected");
    assert_eq!(state("east"), "connected");
    assert!(
        state("stranger").starts_with("authentication refused"),
        "{list}"
    );

    // A deploy and a stop through SSH reach that server's daemon and no other.
    let port = free_port().to_string();
    ok(memctl(
        home,
        &[
            "--server",
            "west",
            "deploy",
            AGGRESSIVE_RSI,
            "--port",
            &port,
        ],
    ));
    let west_client = fleet.west.client().await;
    assert!(
        active_deployment(&west_client, sid(AGGRESSIVE_RSI))
            .await
            .is_some()
    );
    assert!(
        active_deployment(&fleet.east.client().await, sid(AGGRESSIVE_RSI))
            .await
            .is_none()
    );
    ok(memctl(home, &["--server", "west", "stop", AGGRESSIVE_RSI]));
    assert!(
        active_deployment(&west_client, sid(AGGRESSIVE_RSI))
            .await
            .is_none()
    );
    assert!(
        active_deployment(&fleet.here.client().await, sid(AGGRESSIVE_RSI))
            .await
            .is_some()
    );

    // Only reading commands run on every server.
    let refused = memctl(home, &["--server", "all", "stop", MACD_HUNTER]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--server NAME"));
    assert_eq!(
        active_deployments(&fleet.east.client().await).await.len(),
        1
    );

    // A remote daemon that is gone is said so, for that server; back, it answers again.
    fleet.east.stop_with(nix::sys::signal::Signal::SIGKILL);
    let gone = memctl(home, &["--server", "east", "status"]);
    assert_eq!(gone.status.code(), Some(3), "{}", describe(&gone));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("server east: memd not running there"),
        "{}",
        describe(&gone)
    );
    fleet.restart_east();
    wait_for(
        "east answers again over SSH",
        Duration::from_secs(20),
        async || {
            memctl(home, &["--server", "east", "status"])
                .status
                .success()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_only_user_sees_a_server_read_only_over_ssh() {
    if !nix::unistd::getuid().is_root() && std::env::var_os("CI").is_none() {
        eprintln!("skipped: makes a Unix user, needs root (CI runs it)");
        return;
    }
    let viewer = Sshd::viewer();
    let sshd = Sshd::start();
    let alias = sshd.login("memd-viewer", Some(&viewer), true);
    let (daemon, _) = fake_daemon(&format!("[access]\nview_users = [{viewer:?}]\n"));
    deploy(&daemon, MACD_HUNTER).await;
    let remote_memctl = sshd::share_socket(daemon.root.path(), &daemon.socket);

    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    add_ssh_server(
        home,
        &sshd,
        "shared",
        &alias,
        &daemon.socket,
        &remote_memctl,
    );
    let answer: Value = serde_json::from_str(&ok(memctl(
        home,
        &["--server", "shared", "deployed", "--json"],
    )))
    .unwrap();
    assert_eq!(strategies(&answer), [MACD_HUNTER], "{answer}");
    let status: Value = serde_json::from_str(&ok(memctl(
        home,
        &["--server", "shared", "status", "--json"],
    )))
    .unwrap();
    assert_eq!(status["access"], "view", "{status}");
    let stop = memctl(home, &["--server", "shared", "stop", MACD_HUNTER]);
    assert!(!stop.status.success(), "{}", describe(&stop));
    assert!(
        String::from_utf8_lossy(&stop.stderr).contains("view"),
        "{}",
        describe(&stop)
    );
    assert!(
        active_deployment(&daemon.client().await, sid(MACD_HUNTER))
            .await
            .is_some()
    );
}

/// The row of the screen that mentions `text`.
fn line_with<'a>(screen: &'a str, text: &str) -> &'a str {
    screen.lines().find(|l| l.contains(text)).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_servers_view_shows_every_bot_greys_a_lost_server_and_acts_on_the_rows_server() {
    if !mem_e2e::tmux::available() {
        assert!(
            std::env::var_os("MEMD_REQUIRE_TMUX").is_none(),
            "tmux is required here (MEMD_REQUIRE_TMUX) but not installed"
        );
        eprintln!("tmux is not installed: skipping the terminal test");
        return;
    }
    // West deploys Conservative RSI on its preferred port from the TUI.
    let _ports = mem_e2e::seed::preferred_ports().await;
    let mut fleet = ThreeServers::start().await;
    let home = fleet.home.path().to_path_buf();
    let home = home.as_path();

    let config = home.join("xdg-config").display().to_string();
    let home_text = home.display().to_string();
    let t = mem_e2e::tmux::Tmux::start(
        home,
        &format!("{} --server all", bin("memctl").display()),
        140,
        40,
        &[
            ("HOME", &home_text),
            ("XDG_CONFIG_HOME", &config),
            ("TERM", "xterm-256color"),
        ],
    );
    let screen_wait = Duration::from_secs(20);
    t.wait_for("3 of 3 connected", screen_wait);

    // Deployed, every server's bot on a row of its own with its server.
    t.keys(&["3"]);
    let screen = t.wait_until("every bot", screen_wait, |s| {
        line_with(s, "MACD Hunter").contains("east")
            && line_with(s, "Conservative RSI").contains("west")
            && line_with(s, "Aggressive RSI").contains("here")
    });
    assert!(
        line_with(&screen, "MACD Hunter").contains("running"),
        "{screen}"
    );

    // East's daemon dies: its row is kept, greyed, "last seen"; the others go on.
    fleet.east.stop_with(nix::sys::signal::Signal::SIGKILL);
    let screen = t.wait_until("east's row, last seen", screen_wait, |s| {
        line_with(s, "MACD Hunter").contains("last seen")
    });
    assert!(
        line_with(&screen, "Conservative RSI").contains("running"),
        "{screen}"
    );
    assert!(
        !line_with(&screen, "Aggressive RSI").contains("last seen"),
        "{screen}"
    );
    fleet.restart_east();
    t.wait_until("east back", Duration::from_secs(30), |s| {
        let row = line_with(s, "MACD Hunter");
        row.contains("running") && !row.contains("last seen")
    });

    // A stop on west's row (the third) reaches west, and only fleet.west.
    t.keys(&["Down", "Down"]);
    t.keys(&["s"]);
    t.wait_for("Enter or y stops", screen_wait);
    t.keys(&["y"]);
    let west_client = fleet.west.client().await;
    wait_for("west's bot to stop", Duration::from_secs(30), async || {
        active_deployment(&west_client, sid(CONSERVATIVE_RSI))
            .await
            .is_none()
    })
    .await;
    assert!(
        active_deployment(&fleet.east.client().await, sid(MACD_HUNTER))
            .await
            .is_some()
    );
    assert!(
        active_deployment(&fleet.here.client().await, sid(AGGRESSIVE_RSI))
            .await
            .is_some()
    );

    // A deploy from the all-servers Dashboard asks which server, then deploys there.
    t.keys(&["1", "d"]);
    t.wait_for("server: ", screen_wait);
    t.type_text("west");
    t.keys(&["Enter", "2", "/"]);
    t.type_text("conservative");
    t.keys(&["Enter"]);
    t.wait_for("strategies 1/", screen_wait);
    t.keys(&["d"]);
    t.wait_for("Enter deploys", screen_wait);
    t.keys(&["Enter"]);
    wait_for(
        "west's bot deployed again",
        Duration::from_secs(30),
        async || {
            active_deployment(&west_client, sid(CONSERVATIVE_RSI))
                .await
                .is_some()
        },
    )
    .await;
    assert!(
        active_deployment(&fleet.east.client().await, sid(CONSERVATIVE_RSI))
            .await
            .is_none()
    );
    assert!(
        active_deployment(&fleet.here.client().await, sid(CONSERVATIVE_RSI))
            .await
            .is_none()
    );

    // On east alone (`:east`): its session is subscribed anew with what the all-servers
    // views leave out, the bots' log lines among them: the log view follows MACD Hunter's
    // new lines (the fake bot's heartbeat, every 5 s) with no request for them.
    t.type_text(":east");
    t.keys(&["Enter", "3"]);
    t.wait_until("east alone, its Deployed view", screen_wait, |s| {
        s.contains("MACD Hunter") && !s.contains("Aggressive RSI")
    });
    t.keys(&["l"]);
    let last_heartbeat = |s: &str| {
        s.lines()
            .rfind(|l| l.contains("Bot heartbeat"))
            .map(str::to_string)
    };
    let screen = t.wait_until("MACD Hunter's log", screen_wait, |s| {
        last_heartbeat(s).is_some()
    });
    let first = last_heartbeat(&screen);
    t.wait_until("a new heartbeat line", screen_wait, |s| {
        last_heartbeat(s) != first
    });
}
