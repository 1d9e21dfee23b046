//! What a command runs ([`Plan`]), and the database connections that takes.
//!
//! A process holds two kinds of connections (docs/connections.md): its pool, whose size is the
//! sum of what each part of the plan uses at once (below), and one connection of its own per
//! owned worker, which holds that worker's lease (an advisory lock) for as long as the process
//! owns it or stands by for it. The pool opens connections only when they are used and closes
//! them after a minute idle, so a quiet process holds few.

use crate::settings::Settings;

/// Which projector workers a process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projector {
    /// Only these (projection names, or `audit_sequencer`); empty: every one.
    pub only: Vec<String>,
    /// Events per batch.
    pub batch_size: i64,
}

impl Default for Projector {
    fn default() -> Self {
        Self {
            only: Vec::new(),
            batch_size: 500,
        }
    }
}

/// The parts a command runs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The engine's workers: process managers, scheduler, wallet allocator, chain worker,
    /// deposit watcher, wallet sync (and, without `TRON_NODE_URL`, the built-in simulator).
    pub engine: bool,
    /// The HTTP API.
    pub api: bool,
    /// The projector runtime: these projections (and the audit sequencer).
    pub projector: Option<Projector>,
}

/// Pool connections of a one-shot command (`status`, `token`, `keys`, …) and of the process's
/// own start-up (migrations, the status report): one query at a time, and one spare.
pub const POOL_BASE: u32 = 2;
/// Pool connections of the HTTP API in a process of its own (`serve`, the part scaled out for
/// HTTP load): a request holds one for a few milliseconds; 16 (with the base's 2, the 20 of
/// before) served the API benchmark's 64 clients (docs/api.md, "Benchmark").
pub const POOL_API: u32 = 16;
/// Pool connections of the HTTP API beside the engine's workers (`run`, one process that also
/// runs every worker: its API serves the bot, not a load balancer's share of many bots).
pub const POOL_API_BESIDE_WORKERS: u32 = 6;
/// Pool connections of the engine's seven workers. Each holds its lease on a connection of its
/// own and takes pool connections for its batches: a process manager handles up to 64 events
/// of different aggregates at once, each loading its aggregate while appends go out.
pub const POOL_ENGINE: u32 = 6;
/// Pool connections of the projector runtime: batches of different projections overlap little,
/// and the lag monitor samples now and then.
pub const POOL_PROJECTOR: u32 = 2;

impl Plan {
    /// `trx-energy run`: everything.
    pub fn run() -> Self {
        Self {
            engine: true,
            api: true,
            projector: Some(Projector::default()),
        }
    }

    /// `trx-energy serve`: the API alone.
    pub fn serve() -> Self {
        Self {
            api: true,
            ..Self::default()
        }
    }

    /// `trx-energy project`: the projector runtime alone.
    pub fn project(projector: Projector) -> Self {
        Self {
            projector: Some(projector),
            ..Self::default()
        }
    }

    /// A one-shot command: the database only.
    pub fn tool() -> Self {
        Self::default()
    }

    /// Whether the plan needs the vault, the prices and the buses (the engine or the API).
    pub fn needs_services(&self) -> bool {
        self.engine || self.api
    }

    /// The pool's size: `TRX_DATABASE_POOL_SIZE` if set, else the sum of what the parts use.
    pub fn pool_size(&self, settings: &Settings) -> u32 {
        if let Some(n) = settings.database.pool_size {
            return n.get();
        }
        let beside_workers = self.engine || self.projector.is_some();
        POOL_BASE
            + match (self.api, beside_workers) {
                (false, _) => 0,
                (true, false) => POOL_API,
                (true, true) => POOL_API_BESIDE_WORKERS,
            }
            + if self.engine { POOL_ENGINE } else { 0 }
            + if self.projector.is_some() {
                POOL_PROJECTOR
            } else {
                0
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_gets_the_connections_of_the_parts_it_runs() {
        let s = Settings::default();
        assert_eq!(Plan::tool().pool_size(&s), 2);
        assert_eq!(Plan::project(Projector::default()).pool_size(&s), 4);
        assert_eq!(Plan::serve().pool_size(&s), 18);
        assert_eq!(Plan::run().pool_size(&s), 16);
    }

    #[test]
    fn a_configured_pool_size_wins() {
        let mut s = Settings::default();
        s.database.pool_size = std::num::NonZeroU32::new(7);
        assert_eq!(Plan::run().pool_size(&s), 7);
        assert_eq!(Plan::tool().pool_size(&s), 7);
    }
}
