//! Tokens this process has checked, remembered so that a request does not read `api_tokens`.
//!
//! A token's row never changes except by revocation, and every revocation is announced on the
//! [`CHANNEL`] notification channel in the transaction that makes it (see [`super::auth::revoke`]).
//! So a process may remember "this token id is known and not revoked" for as long as it hears
//! every announcement:
//!
//! - entries are kept only while the listener is connected and listening; when its connection
//!   is lost, everything remembered is dropped and every request reads the table again until a
//!   new listener is listening;
//! - an announcement removes its token id; a lookup that read the table while an announcement
//!   (or a reconnection) happened does not store what it read (the generation check), so a
//!   revocation that commits while a request is reading is never covered up;
//! - the process that revokes forgets the token itself before it answers, so a revocation through
//!   an instance takes effect there at once, and on the others when the notification arrives
//!   (milliseconds).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;

/// The channel revocations are announced on; the payload is the token id (`jti`).
pub use crate::store::tokens::CHANNEL;

/// Token ids remembered at most (the map is emptied when full: tokens are few in practice).
const MAX_ENTRIES: usize = 10_000;

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT: Duration = Duration::from_millis(500);

/// What the table says of a token that is not revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownToken {
    pub subject: String,
    pub role: String,
}

/// A lookup's ticket: the generation it started in, to be shown when storing what it read.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<u64>);

#[derive(Debug, Default)]
pub struct KnownTokens {
    entries: Mutex<HashMap<String, KnownToken>>,
    /// True while a listener is listening on [`CHANNEL`].
    listening: AtomicBool,
    /// Moves on every announcement and every change of `listening`.
    generation: AtomicU64,
}

impl KnownTokens {
    /// The remembered answer for a token id, or a ticket to store the table's answer with.
    pub fn get(&self, jti: &str) -> Result<KnownToken, Ticket> {
        // Read the generation before the map: a store with this ticket is refused if anything
        // was announced after this point.
        let generation = self.generation.load(Ordering::SeqCst);
        if !self.listening.load(Ordering::SeqCst) {
            return Err(Ticket(None));
        }
        match self.lock().get(jti) {
            Some(known) => Ok(known.clone()),
            None => Err(Ticket(Some(generation))),
        }
    }

    /// Stores what the table said of a token that is not revoked, unless an announcement or a
    /// reconnection happened since the ticket was taken.
    pub fn remember(&self, ticket: Ticket, jti: &str, known: KnownToken) {
        let Ticket(Some(generation)) = ticket else {
            return;
        };
        let mut entries = self.lock();
        // Checked under the lock that `forget` also takes, after the read of the table.
        if self.generation.load(Ordering::SeqCst) != generation
            || !self.listening.load(Ordering::SeqCst)
        {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(jti.to_string(), known);
    }

    /// Forgets one token id (it was revoked).
    pub fn forget(&self, jti: &str) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(jti);
    }

    /// Forgets everything and stops remembering (or starts again, when `listening`).
    fn set_listening(&self, listening: bool) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.listening.store(listening, Ordering::SeqCst);
        entries.clear();
    }

    /// Whether lookups are being remembered now.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KnownToken>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listens for revocations until the process ends, reconnecting after failures. The
    /// listener has a connection of its own (to `pool`'s database), so it takes none from the
    /// pool the requests use.
    pub async fn listen(self: std::sync::Arc<Self>, pool: PgPool) {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(pool.connect_options().as_ref().clone());
        loop {
            match PgListener::connect_with(&own).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        self.set_listening(true);
                        // `None` or an error: the connection was lost, and announcements
                        // may have been missed.
                        while let Ok(Some(note)) = listener.try_recv().await {
                            self.forget(note.payload());
                        }
                        tracing::warn!("lost the token revocation listener; reading every token from the table until it is back");
                        self.set_listening(false);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for token revocations")
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot connect the token revocation listener")
                }
            }
            tokio::time::sleep(RECONNECT).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownToken {
        KnownToken {
            subject: "bot".into(),
            role: "bot".into(),
        }
    }

    #[test]
    fn nothing_is_remembered_while_no_listener_listens() {
        let tokens = KnownTokens::default();
        let ticket = tokens.get("a").unwrap_err();
        tokens.remember(ticket, "a", known());
        assert!(tokens.get("a").is_err());
    }

    #[test]
    fn a_token_read_while_listening_is_remembered_until_it_is_forgotten() {
        let tokens = KnownTokens::default();
        tokens.set_listening(true);
        let ticket = tokens.get("a").unwrap_err();
        tokens.remember(ticket, "a", known());
        assert_eq!(tokens.get("a").ok(), Some(known()));
        tokens.forget("a");
        assert!(tokens.get("a").is_err());
    }

    #[test]
    fn a_read_that_overlaps_an_announcement_is_not_stored() {
        let tokens = KnownTokens::default();
        tokens.set_listening(true);
        let ticket = tokens.get("a").unwrap_err();
        // The revocation of "a" is announced while the request reads the table.
        tokens.forget("a");
        tokens.remember(ticket, "a", known());
        assert!(tokens.get("a").is_err());
    }

    #[test]
    fn losing_the_listener_forgets_everything_and_refuses_older_reads() {
        let tokens = KnownTokens::default();
        tokens.set_listening(true);
        let ticket = tokens.get("a").unwrap_err();
        tokens.remember(ticket, "a", known());
        let late = tokens.get("b").unwrap_err();
        tokens.set_listening(false);
        assert!(tokens.get("a").is_err());
        tokens.set_listening(true);
        tokens.remember(late, "b", known());
        assert!(tokens.get("b").is_err());
    }
}
