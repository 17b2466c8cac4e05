//! Who may connect, and what they may do.
//!
//! Root and the daemon's own user always have control. Other peers are looked up by uid
//! and by group (primary and supplementary) in the `[access]` section of the config:
//! control lists first, then view lists; anyone else is refused at connect.

use crate::config::AccessConfig;
use anyhow::{Context, bail};
use mem_protocol::Access;
use nix::unistd::{Group, Uid, User};
use std::collections::HashSet;

/// The identity of a connected peer, from the kernel (SO_PEERCRED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// Supplementary groups, read from `/proc/{pid}/status` when available.
    pub groups: Vec<u32>,
}

impl PeerIdentity {
    /// Reads the supplementary groups of the peer process.
    pub fn with_proc_groups(mut self) -> Self {
        if let Some(pid) = self.pid {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(line) = status.lines().find(|l| l.starts_with("Groups:")) {
                    self.groups = line["Groups:".len()..]
                        .split_whitespace()
                        .filter_map(|g| g.parse().ok())
                        .collect();
                }
            }
        }
        self
    }
}

/// The access rules, with names resolved to ids at start-up.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    daemon_uid: u32,
    control_uids: HashSet<u32>,
    control_gids: HashSet<u32>,
    view_uids: HashSet<u32>,
    view_gids: HashSet<u32>,
}

impl AccessPolicy {
    /// Resolves the config's user and group names; an unknown name is an error naming it.
    pub fn from_config(config: &AccessConfig) -> anyhow::Result<AccessPolicy> {
        Ok(AccessPolicy {
            daemon_uid: Uid::effective().as_raw(),
            control_uids: resolve_users(&config.control_users, "access.control_users")?,
            control_gids: resolve_groups(&config.control_groups, "access.control_groups")?,
            view_uids: resolve_users(&config.view_users, "access.view_users")?,
            view_gids: resolve_groups(&config.view_groups, "access.view_groups")?,
        })
    }

    /// What `peer` may do, or `None` if it may not connect at all.
    pub fn classify(&self, peer: &PeerIdentity) -> Option<Access> {
        let in_groups = |gids: &HashSet<u32>| {
            gids.contains(&peer.gid) || peer.groups.iter().any(|g| gids.contains(g))
        };
        if peer.uid == 0
            || peer.uid == self.daemon_uid
            || self.control_uids.contains(&peer.uid)
            || in_groups(&self.control_gids)
        {
            Some(Access::Control)
        } else if self.view_uids.contains(&peer.uid) || in_groups(&self.view_gids) {
            Some(Access::View)
        } else {
            None
        }
    }
}

fn resolve_users(names: &[String], key: &str) -> anyhow::Result<HashSet<u32>> {
    names
        .iter()
        .map(|name| {
            if let Ok(uid) = name.parse::<u32>() {
                return Ok(uid);
            }
            match User::from_name(name)
                .with_context(|| format!("{key}: cannot look up user {name:?}"))?
            {
                Some(user) => Ok(user.uid.as_raw()),
                None => bail!("{key}: no such user {name:?}"),
            }
        })
        .collect()
}

fn resolve_groups(names: &[String], key: &str) -> anyhow::Result<HashSet<u32>> {
    names
        .iter()
        .map(|name| {
            if let Ok(gid) = name.parse::<u32>() {
                return Ok(gid);
            }
            match Group::from_name(name)
                .with_context(|| format!("{key}: cannot look up group {name:?}"))?
            {
                Some(group) => Ok(group.gid.as_raw()),
                None => bail!("{key}: no such group {name:?}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AccessPolicy {
        AccessPolicy {
            daemon_uid: 1000,
            control_uids: HashSet::from([1001]),
            control_gids: HashSet::from([500]),
            view_uids: HashSet::from([1002]),
            view_gids: HashSet::from([600]),
        }
    }

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> PeerIdentity {
        PeerIdentity {
            uid,
            gid,
            pid: None,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn levels_by_uid_and_group() {
        let p = policy();
        assert_eq!(p.classify(&peer(0, 0, &[])), Some(Access::Control), "root");
        assert_eq!(
            p.classify(&peer(1000, 9, &[])),
            Some(Access::Control),
            "the daemon's user"
        );
        assert_eq!(p.classify(&peer(1001, 9, &[])), Some(Access::Control));
        assert_eq!(
            p.classify(&peer(2000, 500, &[])),
            Some(Access::Control),
            "primary group"
        );
        assert_eq!(
            p.classify(&peer(2000, 9, &[7, 500])),
            Some(Access::Control),
            "supplementary group"
        );
        assert_eq!(p.classify(&peer(1002, 9, &[])), Some(Access::View));
        assert_eq!(p.classify(&peer(2000, 600, &[])), Some(Access::View));
        assert_eq!(
            p.classify(&peer(2000, 9, &[601])),
            None,
            "a stranger is refused"
        );
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let config = AccessConfig {
            control_groups: vec!["no-such-group-xyz".into()],
            ..Default::default()
        };
        let err = AccessPolicy::from_config(&config).unwrap_err().to_string();
        assert!(
            err.contains("access.control_groups") && err.contains("no-such-group-xyz"),
            "{err}"
        );
        let config = AccessConfig {
            view_users: vec!["0".into(), "root".into()],
            ..Default::default()
        };
        assert!(
            AccessPolicy::from_config(&config)
                .unwrap()
                .view_uids
                .contains(&0)
        );
    }
}
