//! Who opened each account, remembered by the process: a bot may use only the accounts its
//! subject opened (and the house accounts an admin opened). The opener is the actor of the
//! account's first event, which never changes (the events table refuses UPDATE and DELETE), so
//! once read it can be kept; the map is bounded and simply starts over when full.

use std::collections::HashMap;
use std::sync::Mutex;

/// Accounts remembered at most.
const MAX_REMEMBERED: usize = 100_000;

/// Who opened an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opener {
    /// A bot, by token subject: only that subject's bot tokens may use the account.
    Bot(String),
    /// An admin (or the system): a house account every bot may use.
    House,
}

impl Opener {
    /// From the first event's `actor_role` and `actor_subject`.
    pub fn from_actor(role: Option<String>, subject: Option<String>) -> Self {
        match (role, subject) {
            (Some(role), Some(subject)) if role == "bot" => Opener::Bot(subject),
            _ => Opener::House,
        }
    }

    pub fn admits(&self, bot_subject: &str) -> bool {
        match self {
            Opener::Bot(subject) => subject == bot_subject,
            Opener::House => true,
        }
    }
}

#[derive(Debug, Default)]
pub struct Owners(Mutex<HashMap<String, Opener>>);

impl Owners {
    pub fn get(&self, account_id: &str) -> Option<Opener> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account_id)
            .cloned()
    }

    pub fn remember(&self, account_id: &str, opener: Opener) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
        map.insert(account_id.to_string(), opener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bot_opened_account_admits_only_that_bot_and_a_house_account_admits_every_bot() {
        let bot = Opener::from_actor(Some("bot".into()), Some("bot-a".into()));
        assert!(bot.admits("bot-a"));
        assert!(!bot.admits("bot-b"));
        let house = Opener::from_actor(Some("admin".into()), Some("alice".into()));
        assert_eq!(house, Opener::House);
        assert!(house.admits("bot-b"));
        assert_eq!(Opener::from_actor(None, None), Opener::House);
    }

    #[test]
    fn the_map_remembers_until_it_is_full_then_starts_over() {
        let owners = Owners::default();
        owners.remember("tg:1", Opener::Bot("bot-a".into()));
        assert_eq!(owners.get("tg:1"), Some(Opener::Bot("bot-a".into())));
        for i in 0..MAX_REMEMBERED {
            owners.remember(&format!("tg:x{i}"), Opener::House);
        }
        assert_eq!(owners.get("tg:1"), None, "forgotten when the map filled up");
        assert!(owners.get(&format!("tg:x{}", MAX_REMEMBERED - 1)).is_some());
    }
}
