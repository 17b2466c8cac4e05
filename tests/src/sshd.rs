//! A real OpenSSH server (Debian's `openssh-server`) on a loopback port, for the fleet
//! tests: generated host and user keys, its own `sshd_config`, and an `ssh_config` that
//! names each login as a `Host` alias, so memctl is given `-F <ssh_config>` and an alias
//! exactly as a trader's `~/.ssh/config` would give it.
//!
//! Logins are by key only; `authorized_keys` are per user under the server's directory.
//! [`Sshd::viewer`] makes (once, as root) a second Unix user for view-only access.

use crate::free_port;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// `sshd`, where Debian puts it.
pub const SSHD: &str = "/usr/sbin/sshd";

/// The Unix user the view-only tests log in as (made by [`Sshd::viewer`]).
pub const VIEWER: &str = "memd-e2e-view";
/// The group that may open the test daemons' sockets (as `memd` is on a real server).
pub const SOCKET_GROUP: &str = "memd-e2e";

/// A running sshd; killed when dropped.
pub struct Sshd {
    child: Child,
    pub dir: TempDir,
    pub port: u16,
    /// `-F` this file: it has a `Host` for every login made with [`Sshd::login`].
    pub ssh_config: PathBuf,
}

/// Whether this machine can run the tests' sshd (Debian's openssh-server installed).
pub fn available() -> bool {
    Path::new(SSHD).is_file()
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "memd-e2e", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen -f {}", path.display());
}

fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the current user has a name")
}

impl Sshd {
    /// Starts sshd on a free loopback port and waits until it accepts connections.
    pub fn start() -> Sshd {
        assert!(
            available(),
            "{SSHD} is missing: install Debian's openssh-server (tools/test-all does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        // sshd wants its privilege-separation directory.
        if nix::unistd::getuid().is_root() {
            let _ = fs::create_dir_all("/run/sshd");
        }
        keygen(&d.join("host_key"));
        fs::create_dir_all(d.join("authorized_keys")).unwrap();
        let port = free_port();
        let config = d.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\n\
                 AuthorizedKeysFile {keys}/%u\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 LogLevel VERBOSE\nMaxStartups 100:30:200\nMaxSessions 100\n",
                host = d.join("host_key").display(),
                keys = d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let log = fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        // The client checks the host key: the known_hosts line is made from the key.
        let host_pub = fs::read_to_string(d.join("host_key.pub")).unwrap();
        fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .unwrap();
        let ssh_config = d.join("ssh_config");
        fs::write(&ssh_config, "").unwrap();
        let mut sshd = Sshd {
            child,
            dir,
            port,
            ssh_config,
        };
        sshd.wait_listening();
        sshd
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sshd exited ({status}):\n{}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What sshd logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A `Host` alias `alias` logging in as `user` (default: the current user) with a new
    /// key; `authorized` says whether the server accepts that key.
    pub fn login(&self, alias: &str, user: Option<&str>, authorized: bool) -> String {
        let d = self.dir.path();
        let user = user.map(String::from).unwrap_or_else(user_name);
        let key = d.join(format!("id_{alias}"));
        keygen(&key);
        if authorized {
            let public = fs::read_to_string(key.with_extension("pub")).unwrap();
            let keys = d.join("authorized_keys").join(&user);
            let mut text = fs::read_to_string(&keys).unwrap_or_default();
            text.push_str(&public);
            fs::write(&keys, text).unwrap();
            fs::set_permissions(&keys, fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut config = fs::read_to_string(&self.ssh_config).unwrap();
        config.push_str(&format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
             IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  \
             StrictHostKeyChecking yes\n  LogLevel ERROR\n",
            port = self.port,
            key = key.display(),
            known = d.join("known_hosts").display(),
        ));
        fs::write(&self.ssh_config, config).unwrap();
        alias.to_string()
    }

    /// `ssh_options` for memctl's fleet: `-F <ssh_config>`.
    pub fn ssh_options(&self) -> Vec<String> {
        vec!["-F".into(), self.ssh_config.display().to_string()]
    }

    /// Makes (once) the Unix user [`VIEWER`] in the group [`SOCKET_GROUP`]; root only.
    pub fn viewer() -> String {
        assert!(
            nix::unistd::getuid().is_root(),
            "the view-only fleet test makes a Unix user: run it as root (CI does)"
        );
        let group_exists = nix::unistd::Group::from_name(SOCKET_GROUP)
            .ok()
            .flatten()
            .is_some();
        if !group_exists {
            let _ = Command::new("groupadd").arg(SOCKET_GROUP).status();
        }
        let user_exists = nix::unistd::User::from_name(VIEWER)
            .ok()
            .flatten()
            .is_some();
        if !user_exists {
            let status = Command::new("useradd")
                // `-p *`: no password, but not locked (sshd refuses locked accounts even for keys).
                .args(["-M", "-s", "/bin/sh", "-p", "*", "-G", SOCKET_GROUP, VIEWER])
                .status()
                .expect("run useradd");
            // Another test may have made it meanwhile.
            assert!(
                status.success()
                    || nix::unistd::User::from_name(VIEWER)
                        .ok()
                        .flatten()
                        .is_some(),
                "useradd {VIEWER}"
            );
        }
        VIEWER.to_string()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lets [`SOCKET_GROUP`] reach the daemon's socket at `socket` under `root` (the
/// directories traversable, the socket's directory and file owned by that group), and
/// copies memctl where any user can run it; answers the copy's path.
pub fn share_socket(root: &Path, socket: &Path) -> PathBuf {
    let group = nix::unistd::Group::from_name(SOCKET_GROUP)
        .unwrap()
        .expect("the socket group exists (Sshd::viewer makes it)");
    let mut dir = socket.parent().unwrap();
    nix::unistd::chown(dir, None, Some(group.gid)).unwrap();
    nix::unistd::chown(socket, None, Some(group.gid)).unwrap();
    while dir != root {
        dir = dir.parent().unwrap();
        let mode = fs::metadata(dir).unwrap().permissions().mode();
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o711)).unwrap();
    }
    public_memctl(root)
}

/// A copy of memctl in `dir/bin` that any user can run.
pub fn public_memctl(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let copy = bin_dir.join("memctl");
    if !copy.exists() {
        fs::copy(crate::bin("memctl"), &copy).unwrap();
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    }
    copy
}
