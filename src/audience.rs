//! The actors' `Audience` port: tiers from the accounts in memory, push targets from the outbox.

use std::sync::Arc;

use evconduit_actors::ports::Audience;
use evconduit_actors::tier::Tier;
use uuid::Uuid;

use crate::accounts::Accounts;

/// Answers whether a vehicle has a push target; the push outbox provides it.
pub type PushTargets = Arc<dyn Fn(Uuid) -> bool + Send + Sync>;

pub struct AccountAudience {
    accounts: Arc<Accounts>,
    push_targets: PushTargets,
}

impl AccountAudience {
    pub fn new(accounts: Arc<Accounts>, push_targets: PushTargets) -> Self {
        Self { accounts, push_targets }
    }
}

impl Audience for AccountAudience {
    /// A user not in memory (cannot happen for a vehicle's owner, who was loaded to create it)
    /// counts as Free: the slowest refresh pace is the safe guess.
    fn tier(&self, user_id: Uuid) -> Tier {
        self.accounts.cached_user(user_id).map_or(Tier::Free, |u| u.effective_tier(chrono::Utc::now()))
    }

    fn has_push_target(&self, internal_id: Uuid) -> bool {
        (self.push_targets)(internal_id)
    }
}
