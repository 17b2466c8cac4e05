//! A real PostgreSQL (Debian's `postgresql` package) for the tests: a cluster of its own
//! made with `initdb` in a temporary directory, listening on a free loopback port and on
//! a socket in that directory only; stopped and removed when dropped.
//!
//! PostgreSQL refuses to run as root: as root the cluster runs as the package's
//! `postgres` user (its directory handed over to it); otherwise as the caller.

use crate::free_port;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The superuser the tests' cluster is made with, and its password.
pub const USER: &str = "memd_test";
pub const PASSWORD: &str = "memd-test-password";

/// Where Debian installs the server's programs (the newest version there).
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Whether this machine can run the tests' PostgreSQL.
pub fn available() -> bool {
    bin_dir().is_some()
}

/// A cluster of the test's own with a `registry` database; None when PostgreSQL is not
/// installed (a failure instead when `MEMD_REQUIRE_POSTGRES` says it must be).
pub fn registry_cluster() -> Option<Postgres> {
    if !available() {
        assert!(
            std::env::var_os("MEMD_REQUIRE_POSTGRES").is_none(),
            "PostgreSQL is required here (MEMD_REQUIRE_POSTGRES) but not installed"
        );
        eprintln!("PostgreSQL is not installed: skipped");
        return None;
    }
    let pg = Postgres::start();
    pg.create_database("registry");
    Some(pg)
}

/// A running PostgreSQL cluster.
pub struct Postgres {
    child: Option<Child>,
    pub dir: TempDir,
    pub port: u16,
    bin: PathBuf,
    /// The Unix user it runs as (`postgres` when the tests run as root).
    run_as: Option<nix::unistd::User>,
    /// Whether it syncs to disk (PostgreSQL's defaults): off unless [`Postgres::durable`].
    durable: bool,
}

impl Postgres {
    /// Makes a cluster and starts it; waits until it accepts connections.
    pub fn start() -> Postgres {
        let bin = bin_dir().expect(
            "PostgreSQL's server is missing: install Debian's postgresql (tools/test-all does)",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let run_as = nix::unistd::getuid().is_root().then(|| {
            nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("the postgres user (made by Debian's postgresql package)")
        });
        if let Some(user) = &run_as {
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid)).unwrap();
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let password_file = dir.path().join("pwfile");
        std::fs::write(&password_file, PASSWORD).unwrap();
        if let Some(user) = &run_as {
            nix::unistd::chown(&password_file, Some(user.uid), Some(user.gid)).unwrap();
        }
        let mut pg = Postgres {
            child: None,
            port: free_port(),
            dir,
            bin,
            run_as,
            durable: false,
        };
        let status = pg
            .command("initdb")
            .args(["-D"])
            .arg(pg.data())
            .args(["-U", USER, "--auth=scram-sha-256", "--pwfile"])
            .arg(&password_file)
            .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        pg.start_server();
        pg
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        cmd.env_remove("PGHOST").env_remove("PGPORT");
        cmd
    }

    /// The same cluster restarted with PostgreSQL's own durability settings (every commit
    /// synced to disk), for benchmarks of durable writes.
    pub fn durable(mut self) -> Postgres {
        self.stop();
        self.durable = true;
        self.start_server();
        self
    }

    /// The cluster's data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server (after [`Postgres::stop`] too) and waits until it answers.
    pub fn start_server(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).unwrap();
        if let Some(user) = &self.run_as {
            nix::unistd::chown(&self.dir.path().join("postgres.log"), Some(user.uid), None)
                .unwrap();
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(self.dir.path())
            // Test speed, not durability across power loss: the tests crash processes,
            // not the machine. A benchmark of durable writes asks for PostgreSQL's own.
            .args(if self.durable {
                &[][..]
            } else {
                &["-c", "fsync=off", "-c", "full_page_writes=off"][..]
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("postgres exited ({status}):\n{}", self.log());
            }
            let ready = self
                .command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (a fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = child.wait();
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A URL for database `db` (made with [`Postgres::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// A URL without the password (it is read from a file: see [`Postgres::password_file`]).
    pub fn url_without_password(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Writes the password to `dir/pg-password` (0600) and answers its path.
    pub fn password_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("pg-password");
        std::fs::write(&path, PASSWORD).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// Writes `dir/memd.toml` putting memd's registry in this cluster's `registry`
    /// database as server `server` (the password in a 0600 file beside it); answers its
    /// path.
    pub fn memd_config(&self, dir: &Path, server: &str) -> PathBuf {
        let config = dir.join("memd.toml");
        std::fs::write(
            &config,
            format!(
                "[registry]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\nserver = \"{server}\"\n",
                self.url_without_password("registry"),
                self.password_file(dir).display()
            ),
        )
        .unwrap();
        config
    }

    /// Runs SQL with `psql` as the superuser, on database `db`.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates an empty database.
    pub fn create_database(&self, db: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{db}\""));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_answers_stops_and_starts_again() {
        if !available() {
            assert!(
                std::env::var_os("MEMD_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL is required here (MEMD_REQUIRE_POSTGRES) but not installed"
            );
            return;
        }
        let mut pg = Postgres::start();
        pg.create_database("memd");
        assert_eq!(pg.psql("memd", "SELECT 40 + 2").trim(), "42");
        pg.stop();
        pg.start_server();
        assert_eq!(pg.psql("memd", "SELECT current_database()").trim(), "memd");
    }
}
