//! An acting remediation, recorded by the engine once its call succeeded and kept until the
//! reconciler finds it healed or escalates it: what was done, for which event, and when.

use serde::{Deserialize, Serialize};

use crate::plan::Action;
use crate::time::EpochSeconds;

/// The ledger set holding every open watch.
pub const WATCHES_KEY: &str = "watch#open";

/// How long the set lives after its last new member: open remediations are settled (healed or
/// escalated) within the hour, so a week only matters when the reconciler itself is down.
pub const WATCHES_SECONDS: i64 = 7 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Watch {
    /// The function that acted.
    pub function: String,
    /// The ledger key of the event it acted on.
    pub event: String,
    pub action: Action,
    pub started_at: EpochSeconds,
}

impl Watch {
    /// The set member that stores it.
    pub fn member(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored member, or `None` for one this version cannot read.
    pub fn from_member(member: &str) -> Option<Self> {
        serde_json::from_str(member).ok()
    }

    /// One remediation, however many times its watch was written (a retry that finds the action
    /// done writes it again, with a later start).
    pub fn id(&self) -> String {
        format!("{}#{}#{}", self.event, self.action.name(), self.action.resource())
    }
}

/// Watches with one per remediation, the earliest start kept, in a stable order.
pub fn distinct(mut watches: Vec<Watch>) -> Vec<Watch> {
    watches.sort_by(|a, b| a.id().cmp(&b.id()).then(a.started_at.cmp(&b.started_at)));
    watches.dedup_by(|later, earlier| later.id() == earlier.id());
    watches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(started_at: EpochSeconds) -> Watch {
        Watch {
            function: "instance-healer".into(),
            event: "event#eventbridge:e1".into(),
            action: Action::StartInstance { instance_id: "i-0abc1234".into(), completes_recovery: false },
            started_at,
        }
    }

    #[test]
    fn given_a_watch_when_stored_as_a_member_then_read_back_the_same() {
        let stored = watch(100).member();
        assert_eq!(Watch::from_member(&stored), Some(watch(100)));
        assert_eq!(Watch::from_member("{\"not\": \"a watch\"}"), None);
    }

    #[test]
    fn given_one_remediation_written_twice_when_made_distinct_then_the_earliest_start_is_kept() {
        let other = Watch { event: "event#eventbridge:e2".into(), ..watch(300) };
        assert_eq!(distinct(vec![watch(200), other.clone(), watch(100)]), vec![watch(100), other]);
    }
}
