//! Who may connect, and what they may do.
//!
//! Root and the daemon's own user always have control. Other peers are looked up by uid
//! and by group (primary and supplementary) in the `[access]` section of the config:
//! control lists first, then view lists; anyone else is refused at connect.

use crate::config::AccessConfig;
use anyhow::{Context, bail};
use mem_protocol::deploy::DeploymentId;
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Access, Request, RpcError};
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

/// What a Freqtrade bot's connection may do ([`Access::Bot`]): its credential, rendered
/// into the bot's config by the supervisor, names one active deployment. A bot runs as
/// the daemon's user, so its peer check alone would give it control; the credential
/// narrows its connection to MEM's calls for its own strategy, never widens one (it is
/// taken only from a peer that has control).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotScope {
    pub deployment_id: DeploymentId,
    pub strategy_id: StrategyId,
    /// The strategy's registry name: what its decisions are kept under.
    pub strategy: String,
}

/// The methods a bot's connection may call.
pub const BOT_METHODS: [&str; 3] = ["mem.enhance", "mem.decide", "mem.outcome"];

impl BotScope {
    /// Lets `request` through when this bot may make it: an enhancement or a decision for
    /// its own strategy (named by registry name or id; the id is rewritten to the name,
    /// so a strategy has one memory), an outcome of one of its own strategy's decisions
    /// (`decision_strategy` answers a decision's strategy, `None` when memd holds no such
    /// decision: then the outcome is answered as not found). Anything else is refused.
    pub fn admit(
        &self,
        request: &mut Request,
        decision_strategy: impl FnOnce(&str) -> Option<String>,
    ) -> Result<(), RpcError> {
        let signal = match request {
            Request::MemEnhance(p) => &mut p.signal,
            Request::MemDecide(p) => &mut p.enhance.signal,
            Request::MemOutcome(p) => {
                return match decision_strategy(&p.decision_id) {
                    Some(s) if s != self.strategy => Err(RpcError::permission_denied(format!(
                        "decision `{}` is not one of strategy {}'s: a bot's credential reports outcomes of its own strategy's decisions only",
                        p.decision_id, self.strategy
                    ))),
                    _ => Ok(()),
                };
            }
            other => {
                return Err(RpcError::permission_denied(format!(
                    "`{}` is not allowed with a bot's credential: it may call only {} for strategy {}",
                    other.method(),
                    BOT_METHODS.join(", "),
                    self.strategy
                )));
            }
        };
        if signal.strategy == self.strategy_id.to_string() {
            signal.strategy = self.strategy.clone();
        }
        if signal.strategy != self.strategy {
            return Err(RpcError::permission_denied(format!(
                "a bot's credential decides for its own strategy only ({}), not for {:?}",
                self.strategy, signal.strategy
            )));
        }
        Ok(())
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

    fn scope() -> BotScope {
        BotScope {
            deployment_id: DeploymentId::new_random(),
            strategy_id: "4ce3a79b-c22b-4b42-9d87-3a58052a9eec".parse().unwrap(),
            strategy: "freqtrade_macd_hunter".into(),
        }
    }

    fn request(method: &str, params: serde_json::Value) -> Request {
        Request::parse(method, Some(params)).unwrap()
    }

    fn signal(strategy: &str) -> serde_json::Value {
        serde_json::json!({"signal": {"strategy": strategy, "symbol": "ETH/USDT", "action": "BUY", "confidence": 0.65}})
    }

    #[test]
    fn a_bot_enhances_and_decides_for_its_own_strategy_only() {
        let s = scope();
        let none = |_: &str| -> Option<String> { unreachable!("only outcomes look decisions up") };
        let mut own = request("mem.enhance", signal("freqtrade_macd_hunter"));
        assert_eq!(s.admit(&mut own, none), Ok(()));
        // Named by its id, the strategy is kept under its registry name.
        let mut by_id = signal("4ce3a79b-c22b-4b42-9d87-3a58052a9eec");
        by_id["price"] = serde_json::json!(3000.0);
        let mut by_id = request("mem.decide", by_id);
        assert_eq!(s.admit(&mut by_id, none), Ok(()));
        let Request::MemDecide(p) = by_id else {
            unreachable!()
        };
        assert_eq!(p.enhance.signal.strategy, "freqtrade_macd_hunter");
        let mut other = signal("native_rsi");
        other["price"] = serde_json::json!(3000.0);
        let err = s
            .admit(&mut request("mem.decide", other), none)
            .unwrap_err();
        assert_eq!(err.code, mem_protocol::ErrorCode::PermissionDenied);
        assert!(err.message.contains("native_rsi"), "{}", err.message);
    }

    #[test]
    fn a_bot_reports_outcomes_of_its_own_decisions_only() {
        let s = scope();
        let outcome = || {
            request(
                "mem.outcome",
                serde_json::json!({"decisionId": "d1", "exitPrice": 1.0, "pnl": 1.0, "pnlPct": 0.01}),
            )
        };
        assert_eq!(
            s.admit(&mut outcome(), |_| Some("freqtrade_macd_hunter".into())),
            Ok(())
        );
        assert_eq!(
            s.admit(&mut outcome(), |_| None),
            Ok(()),
            "an unknown decision is answered as not found"
        );
        let err = s
            .admit(&mut outcome(), |_| Some("native_rsi".into()))
            .unwrap_err();
        assert_eq!(err.code, mem_protocol::ErrorCode::PermissionDenied);
    }

    #[test]
    fn a_bot_may_call_nothing_else() {
        let s = scope();
        for (method, params) in [
            (
                "strategies.deploy",
                serde_json::json!({"id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec"}),
            ),
            ("strategies.list", serde_json::json!({})),
            ("mem.decisions", serde_json::json!({})),
            ("daemon.stop", serde_json::json!({})),
            ("events.subscribe", serde_json::json!({})),
        ] {
            let err = s.admit(&mut request(method, params), |_| None).unwrap_err();
            assert_eq!(
                err.code,
                mem_protocol::ErrorCode::PermissionDenied,
                "{method}"
            );
            assert!(err.message.contains(method), "{}", err.message);
        }
    }

    #[test]
    fn bot_access_passes_no_level_check() {
        assert!(Access::Bot < Access::View && Access::View < Access::Control);
    }
}
