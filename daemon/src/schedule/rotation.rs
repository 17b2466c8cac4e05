//! Rotation: the seed's "scheduled strategy rotation" and "deploy on a regime change".
//! From the recommendations for the market now, decide which bots the job keeps, which
//! it deploys and which it drains, each with its reason; then do it.
//!
//! Rules ([`plan`]):
//! - only recommendations at or above the policy's minimum confidence count
//!   ("eligible"), and only strategies that can be deployed;
//! - the job only ever stops what it deployed itself (its `startedBy`); a strategy
//!   already running for someone else (a person, the other job) is left alone and
//!   skipped;
//! - one of its bots whose strategy is still eligible is kept (`keep_current`; without
//!   it only the top `max_concurrent` eligible are kept), the rest are drained;
//! - free places (up to `max_concurrent`) go to the best eligible strategies not running.
//!
//! Order ([`execute`]): the new bots are started first and the old ones drained only if
//! every start succeeded, so a failed run leaves every running bot as it was.

use super::config::RotationPolicy;
use crate::supervisor::Supervisor;
use mem_protocol::deploy::{DeployParams, DeploymentStatus, StartedBy, StopMode, StopParams};
use mem_protocol::recommend::Recommendation;
use mem_protocol::strategy::StrategyId;
use serde::Serialize;
use std::sync::Arc;

/// A running deployment, as the plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub strategy_id: StrategyId,
    pub name: String,
    pub started_by: StartedBy,
}

/// What the job does to one strategy, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub action: ActionKind,
    pub strategy_id: StrategyId,
    pub strategy_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub reason: String,
    /// What came of it, once done (`deployed 1f0e…`, an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Keep,
    Deploy,
    Drain,
    /// Eligible, but not the job's to deploy (running for someone else, not deployable).
    Skip,
}

fn who(by: StartedBy) -> &'static str {
    match by {
        StartedBy::Manual => "by hand",
        StartedBy::Rotation => "by rotation",
        StartedBy::Regime => "by the regime job",
    }
}

/// Decides the moves. `recommendations` best first; `running`: every active deployment;
/// `deployable(id)`: why a strategy cannot be deployed, if it cannot.
pub fn plan(
    recommendations: &[Recommendation],
    running: &[Running],
    owner: StartedBy,
    policy: &RotationPolicy,
    deployable: impl Fn(StrategyId) -> Result<(), String>,
) -> Vec<Action> {
    let eligible: Vec<&Recommendation> = recommendations
        .iter()
        .filter(|r| r.confidence_score >= policy.min_confidence)
        .collect();
    let rank = |id: StrategyId| eligible.iter().position(|r| r.strategy_id == id);
    let mine: Vec<&Running> = running.iter().filter(|r| r.started_by == owner).collect();
    let mut actions = Vec::new();

    // Which of the job's own bots stay.
    let mut kept: Vec<StrategyId> = Vec::new();
    let mut mine_by_rank: Vec<(&Running, Option<usize>)> =
        mine.iter().map(|r| (*r, rank(r.strategy_id))).collect();
    mine_by_rank.sort_by_key(|(_, rank)| rank.unwrap_or(usize::MAX));
    for (bot, position) in &mine_by_rank {
        let rec = position.map(|p| eligible[p]);
        let stays = match (rec, policy.keep_current) {
            (Some(_), true) => kept.len() < policy.max_concurrent,
            (Some(_), false) => position.is_some_and(|p| p < policy.max_concurrent),
            (None, _) => false,
        };
        if stays {
            kept.push(bot.strategy_id);
            let r = rec.expect("stays only when eligible");
            actions.push(Action {
                action: ActionKind::Keep,
                strategy_id: bot.strategy_id,
                strategy_name: bot.name.clone(),
                confidence: Some(r.confidence_score),
                reason: format!(
                    "still recommended at {:.2} (>= {:.2}): {}",
                    r.confidence_score, policy.min_confidence, r.reason
                ),
                result: None,
            });
            continue;
        }
        let reason = match (rec, recommendations.iter().find(|r| r.strategy_id == bot.strategy_id)) {
            (Some(r), _) => format!(
                "recommended at {:.2} but not among the best {} (keep_current is off)",
                r.confidence_score, policy.max_concurrent
            ),
            (None, Some(r)) => format!(
                "no longer recommended enough: {:.2} < {:.2} ({})",
                r.confidence_score,
                policy.min_confidence,
                if r.reason.is_empty() { "no rule matched" } else { &r.reason }
            ),
            (None, None) => "no longer recommended for these conditions (0.50 or less, or not an active MEM strategy)".to_string(),
        };
        let reason = if rec.is_some() && policy.keep_current {
            format!("over max_concurrent {}", policy.max_concurrent)
        } else {
            reason
        };
        actions.push(Action {
            action: ActionKind::Drain,
            strategy_id: bot.strategy_id,
            strategy_name: bot.name.clone(),
            confidence: rec.map(|r| r.confidence_score),
            reason,
            result: None,
        });
    }

    // Free places go to the best eligible strategies.
    let mut places = policy.max_concurrent.saturating_sub(kept.len());
    for r in &eligible {
        if places == 0 {
            break;
        }
        if kept.contains(&r.strategy_id) {
            continue;
        }
        let skip = |reason: String| Action {
            action: ActionKind::Skip,
            strategy_id: r.strategy_id,
            strategy_name: r.strategy_name.clone(),
            confidence: Some(r.confidence_score),
            reason,
            result: None,
        };
        if let Some(other) = running
            .iter()
            .find(|d| d.strategy_id == r.strategy_id && d.started_by != owner)
        {
            actions.push(skip(format!(
                "recommended at {:.2} but already running, started {}: left alone",
                r.confidence_score,
                who(other.started_by)
            )));
            continue;
        }
        if let Err(why) = deployable(r.strategy_id) {
            actions.push(skip(format!(
                "recommended at {:.2} but cannot be deployed: {why}",
                r.confidence_score
            )));
            continue;
        }
        places -= 1;
        actions.push(Action {
            action: ActionKind::Deploy,
            strategy_id: r.strategy_id,
            strategy_name: r.strategy_name.clone(),
            confidence: Some(r.confidence_score),
            reason: format!(
                "recommended at {:.2} (>= {:.2}): {}",
                r.confidence_score, policy.min_confidence, r.reason
            ),
            result: None,
        });
    }
    actions
}

/// One line for the history: what moved.
pub fn summarize(actions: &[Action]) -> String {
    let names = |kind: ActionKind| {
        actions
            .iter()
            .filter(|a| a.action == kind)
            .map(|a| a.strategy_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    for (kind, word) in [
        (ActionKind::Deploy, "deployed"),
        (ActionKind::Drain, "drained"),
        (ActionKind::Keep, "kept"),
    ] {
        let n = names(kind);
        if !n.is_empty() {
            parts.push(format!("{word} {n}"));
        }
    }
    if parts.is_empty() {
        "nothing to do: no recommendation reaches the minimum confidence".into()
    } else {
        parts.join("; ")
    }
}

/// Carries out a plan: starts, then drains. Answers the actions with their results, and
/// the first error (then nothing was drained).
pub async fn execute(
    supervisor: &Arc<Supervisor>,
    mut actions: Vec<Action>,
    owner: StartedBy,
    policy: &RotationPolicy,
) -> (Vec<Action>, Option<String>) {
    let mut failure = None;
    for a in actions
        .iter_mut()
        .filter(|a| a.action == ActionKind::Deploy)
    {
        let deployed = supervisor
            .deploy(
                DeployParams {
                    id: a.strategy_id,
                    dry_run: !policy.allow_live,
                    port: None,
                    parameters: None,
                    native: None,
                },
                owner,
            )
            .await;
        match deployed {
            Ok(d) => {
                a.result = Some(format!(
                    "deployment {} {}{}",
                    d.deployment_id,
                    if d.dry_run { "dry-run" } else { "LIVE" },
                    d.port.map(|p| format!(" on port {p}")).unwrap_or_default()
                ));
            }
            Err(e) => {
                a.result = Some(format!("not deployed: {}", e.message));
                failure = Some(format!(
                    "deploying {} failed: {}",
                    a.strategy_name, e.message
                ));
                break;
            }
        }
    }
    if failure.is_some() {
        // Nothing is drained; what did start stays up (a person can stop it), reported.
        return (actions, failure);
    }
    for a in actions.iter_mut().filter(|a| a.action == ActionKind::Drain) {
        let stopped = supervisor
            .stop(StopParams {
                id: a.strategy_id,
                mode: StopMode::Drain,
                deadline_secs: Some(policy.drain_deadline_secs),
            })
            .await;
        a.result = Some(match stopped {
            Ok(d) if d.status == DeploymentStatus::Stopped => {
                format!("stopped ({} open trades at the end)", d.stats.open_trades)
            }
            Ok(d) => format!("{:?}", d.status).to_lowercase(),
            Err(e) => format!("not stopped: {}", e.message),
        });
    }
    (actions, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::recommend::MetricsSource;

    fn id(n: u8) -> StrategyId {
        format!("00000000-0000-4000-8000-0000000000{n:02}")
            .parse()
            .unwrap()
    }

    fn rec(n: u8, confidence: f64) -> Recommendation {
        Recommendation {
            strategy_id: id(n),
            strategy_name: format!("S{n}"),
            category: "momentum".into(),
            confidence_score: confidence,
            reason: "momentum strategy suits bullish trend".into(),
            estimated_sharpe: None,
            estimated_win_rate: None,
            metrics_source: MetricsSource::Backtest,
            live_trades: 0,
            is_deployed: false,
            breakdown: vec![],
        }
    }

    fn bot(n: u8, by: StartedBy) -> Running {
        Running {
            strategy_id: id(n),
            name: format!("S{n}"),
            started_by: by,
        }
    }

    fn policy() -> RotationPolicy {
        RotationPolicy {
            min_confidence: 0.8,
            keep_current: true,
            max_concurrent: 1,
            allow_live: false,
            drain_deadline_secs: 60,
        }
    }

    fn moves(actions: &[Action]) -> Vec<(ActionKind, String)> {
        actions
            .iter()
            .map(|a| (a.action, a.strategy_name.clone()))
            .collect()
    }

    use ActionKind::*;

    #[test]
    fn the_rotated_bot_moves_to_the_new_top_and_manual_bots_are_untouched() {
        let recs = [rec(2, 0.85), rec(1, 0.65)];
        let running = [bot(1, StartedBy::Rotation), bot(3, StartedBy::Manual)];
        let a = plan(&recs, &running, StartedBy::Rotation, &policy(), |_| Ok(()));
        assert_eq!(moves(&a), [(Drain, "S1".into()), (Deploy, "S2".into())]);
        assert!(a[0].reason.contains("0.65 < 0.80"), "{}", a[0].reason);
        assert!(a[1].reason.contains("0.85"), "{}", a[1].reason);
        assert_eq!(summarize(&a), "deployed S2; drained S1");
    }

    #[test]
    fn a_still_recommended_bot_is_kept_unless_the_policy_says_otherwise() {
        let recs = [rec(2, 0.95), rec(1, 0.85)];
        let running = [bot(1, StartedBy::Rotation)];
        let a = plan(&recs, &running, StartedBy::Rotation, &policy(), |_| Ok(()));
        assert_eq!(moves(&a), [(Keep, "S1".into())]);
        let mut p = policy();
        p.keep_current = false;
        let a = plan(&recs, &running, StartedBy::Rotation, &p, |_| Ok(()));
        assert_eq!(moves(&a), [(Drain, "S1".into()), (Deploy, "S2".into())]);
        assert!(
            a[0].reason.contains("keep_current is off"),
            "{}",
            a[0].reason
        );
    }

    #[test]
    fn below_the_minimum_confidence_nothing_is_deployed_and_the_old_bot_drains() {
        let recs = [rec(2, 0.79), rec(1, 0.65)];
        let running = [bot(1, StartedBy::Rotation)];
        let a = plan(&recs, &running, StartedBy::Rotation, &policy(), |_| Ok(()));
        assert_eq!(moves(&a), [(Drain, "S1".into())]);
        let a = plan(&recs, &[], StartedBy::Rotation, &policy(), |_| Ok(()));
        assert!(a.is_empty());
        assert!(summarize(&a).starts_with("nothing to do"));
        // Exactly at the minimum counts.
        let a = plan(&[rec(2, 0.8)], &[], StartedBy::Rotation, &policy(), |_| {
            Ok(())
        });
        assert_eq!(moves(&a), [(Deploy, "S2".into())]);
    }

    #[test]
    fn a_strategy_running_for_someone_else_or_undeployable_is_skipped_for_the_next() {
        let recs = [rec(3, 0.95), rec(4, 0.9), rec(2, 0.85)];
        let running = [bot(3, StartedBy::Manual)];
        let a = plan(&recs, &running, StartedBy::Rotation, &policy(), |id| {
            if id == super::tests::id(4) {
                Err("no deployment section".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(
            moves(&a),
            [
                (Skip, "S3".into()),
                (Skip, "S4".into()),
                (Deploy, "S2".into())
            ]
        );
        assert!(a[0].reason.contains("by hand"), "{}", a[0].reason);
        assert!(
            a[1].reason.contains("no deployment section"),
            "{}",
            a[1].reason
        );
    }

    #[test]
    fn max_concurrent_bounds_the_bots_of_the_job() {
        let recs = [rec(1, 0.95), rec(2, 0.9), rec(3, 0.85)];
        let mut p = policy();
        p.max_concurrent = 2;
        let a = plan(&recs, &[], StartedBy::Rotation, &p, |_| Ok(()));
        assert_eq!(moves(&a), [(Deploy, "S1".into()), (Deploy, "S2".into())]);
        // Three of its own, all still eligible, with room for two: the worst drains.
        let running = [
            bot(3, StartedBy::Rotation),
            bot(1, StartedBy::Rotation),
            bot(2, StartedBy::Rotation),
        ];
        let a = plan(&recs, &running, StartedBy::Rotation, &p, |_| Ok(()));
        assert_eq!(
            moves(&a),
            [
                (Keep, "S1".into()),
                (Keep, "S2".into()),
                (Drain, "S3".into())
            ]
        );
        assert!(a[2].reason.contains("max_concurrent"), "{}", a[2].reason);
    }

    #[test]
    fn each_job_only_moves_its_own_bots() {
        let recs = [rec(2, 0.85)];
        let running = [bot(1, StartedBy::Regime)];
        let a = plan(&recs, &running, StartedBy::Rotation, &policy(), |_| Ok(()));
        assert_eq!(
            moves(&a),
            [(Deploy, "S2".into())],
            "the regime job's bot is not rotation's"
        );
    }
}
