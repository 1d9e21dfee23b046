//! Fault injection, set at run time through `POST /sim/faults`. Counters are "the next N":
//! each matching request consumes one. Node endpoints only (`/wallet…`, `/walletsolidity…`);
//! the admin endpoints are never faulted.

use serde::{Deserialize, Serialize};

/// The faults in force. `POST /sim/faults` merges the fields it names into these; `{"clear":
/// true}` resets everything first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// The next N broadcasts that the node accepts lose their response: the transaction is in
    /// the pool, but the connection breaks before the answer arrives.
    #[serde(default)]
    pub lose_broadcast_responses: u32,
    /// The next N requests get HTTP 503 without being processed.
    #[serde(default)]
    pub http_5xx: u32,
    /// The next N requests hang for `hang_ms` before being answered (a client with a shorter
    /// timeout gives up first).
    #[serde(default)]
    pub timeouts: u32,
    /// How long a timed-out request hangs, in ms (default 10,000).
    #[serde(default)]
    pub hang_ms: Option<u64>,
    /// Every request waits this long first, in ms.
    #[serde(default)]
    pub latency_ms: u64,
    /// The next N broadcasts the node accepts are pooled but never put in a block (a resend
    /// gets `DUP_TRANSACTION_ERROR`; the transaction expires unseen).
    #[serde(default)]
    pub never_include: u32,
    /// The next N broadcasts answer `SERVER_BUSY` without looking at the transaction.
    #[serde(default)]
    pub server_busy: u32,
    /// The next N requests are answered with a body that is not JSON.
    #[serde(default)]
    pub garbage: u32,
    /// The next N transactions built by `/wallet/delegateresource` or `/wallet/undelegateresource`
    /// are altered (balance +1 sun, txID recomputed): a client must refuse to sign them.
    #[serde(default)]
    pub tamper_built: u32,
}

/// Consumes one from a "next N" counter; true when it applied.
pub fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

/// `POST /sim/faults` body: the fields to set, plus one-shot actions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsRequest {
    /// Reset every fault before applying the rest.
    #[serde(default)]
    pub clear: bool,
    #[serde(default)]
    pub lose_broadcast_responses: Option<u32>,
    #[serde(default)]
    pub http_5xx: Option<u32>,
    #[serde(default)]
    pub timeouts: Option<u32>,
    #[serde(default)]
    pub hang_ms: Option<u64>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub never_include: Option<u32>,
    #[serde(default)]
    pub server_busy: Option<u32>,
    #[serde(default)]
    pub garbage: Option<u32>,
    #[serde(default)]
    pub tamper_built: Option<u32>,
    /// Drop every unsolidified block now.
    #[serde(default)]
    pub reorg: Option<Reorg>,
}

/// `"reorg": true` or `"reorg": {"requeue": true}`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum Reorg {
    Now(bool),
    With {
        /// Put the dropped transactions back in the pool (as a node switching forks does)
        /// instead of losing them.
        #[serde(default)]
        requeue: bool,
    },
}

impl Reorg {
    /// `Some(requeue)` when a reorganisation is asked for.
    pub fn requested(self) -> Option<bool> {
        match self {
            Self::Now(true) => Some(false),
            Self::Now(false) => None,
            Self::With { requeue } => Some(requeue),
        }
    }
}

impl Faults {
    /// Merges a request into the faults in force.
    pub fn apply(&mut self, request: &FaultsRequest) {
        if request.clear {
            *self = Self::default();
        }
        let set = |target: &mut u32, value: Option<u32>| {
            if let Some(v) = value {
                *target = v;
            }
        };
        set(
            &mut self.lose_broadcast_responses,
            request.lose_broadcast_responses,
        );
        set(&mut self.http_5xx, request.http_5xx);
        set(&mut self.timeouts, request.timeouts);
        set(&mut self.never_include, request.never_include);
        set(&mut self.server_busy, request.server_busy);
        set(&mut self.garbage, request.garbage);
        set(&mut self.tamper_built, request.tamper_built);
        if let Some(ms) = request.hang_ms {
            self.hang_ms = Some(ms);
        }
        if let Some(ms) = request.latency_ms {
            self.latency_ms = ms;
        }
    }
}
