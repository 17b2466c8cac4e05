//! Figures the load tools read from /proc and compute from samples, and the memd they
//! start (release build, the fake Freqtrade as its bots).

/// Starts the memd built beside the running tool on `root` (its data, config and socket),
/// with the fake Freqtrade as `freqtrade` (its behaviour: `fake_bot`, written as the
/// overrides), bots' ports in `ports`, and `extra` appended to its config; answers the
/// process and its socket.
pub fn spawn_memd_with_fake_bots(
    root: &std::path::Path,
    fake_bot: serde_json::Value,
    ports: (u16, u16),
    extra: &str,
) -> (std::process::Child, std::path::PathBuf) {
    let overrides = root.join("overrides.json");
    std::fs::write(
        &overrides,
        serde_json::json!({ "fake_bot": fake_bot }).to_string(),
    )
    .expect("write the overrides");
    let config = root.join("memd.toml");
    std::fs::write(
        &config,
        format!(
            "[freqtrade]\nbin = {:?}\nconfig_overrides = {:?}\nport_range = [{}, {}]\n{extra}",
            next_to_me("fake_freqtrade").display().to_string(),
            overrides.display().to_string(),
            ports.0,
            ports.1,
        ),
    )
    .expect("write memd.toml");
    let socket = root.join("memd.sock");
    let daemon = std::process::Command::new(next_to_me("memd"))
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(root.join("data"))
        .env("MEMD_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start memd");
    (daemon, socket)
}

/// A bot strategy named `name` for the load tools: the seed's MACD Hunter's metadata with
/// its id, name and port cleared (each deploy then gets a free port).
pub fn load_bot_strategy(name: &str) -> serde_json::Value {
    let mut doc: serde_json::Value = serde_json::from_str(include_str!(
        "../../data/strategy_registry/metadata/4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json"
    ))
    .expect("the seed's metadata");
    doc["strategy"]["id"] = serde_json::Value::Null;
    doc["strategy"]["name"] = serde_json::json!(name);
    doc["strategy"]["display_name"] = serde_json::json!(name.replace('_', " "));
    doc["strategy"]["deployment"]["port"] = serde_json::Value::Null;
    doc
}

/// A binary built beside the running one (same profile): the load tools start memd and
/// the fake Freqtrade this way.
pub fn next_to_me(name: &str) -> std::path::PathBuf {
    let path = std::env::current_exe()
        .expect("the running binary's path")
        .parent()
        .expect("the binary's directory")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it in the same profile",
        path.display()
    );
    path
}

/// CPU seconds (user + system) of a process (`"self"` for the caller), from /proc.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): state is field 3; utime 14, stime 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (ticks(11) + ticks(12)) / per_second
}

/// A memory figure of /proc/{pid}/status (`VmRSS:`, `VmHWM:`), in MB.
pub fn status_mb(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

/// The nearest-rank percentile `p` (0-100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of sorted samples.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
