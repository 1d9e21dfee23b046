//! The full-node client (docs/node-client.md): typed calls for the endpoints the engine uses,
//! on the head (`/wallet/…`) or the solidified view (`/walletsolidity/…`); a timeout on every
//! call; retries with exponential backoff for transient failures only (connection errors,
//! timeouts, HTTP 5xx/429, and the broadcast codes that mean "try the same bytes later");
//! broadcast replies classified by their `code`; the `TRON-PRO-API-KEY` header when configured;
//! and node-built transactions refused unless their bytes are exactly what was asked for.

pub mod code;
pub mod types;

use std::fmt;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tracing::Instrument;

pub use code::{BroadcastClass, ResponseCode};
pub use types::{
    energy_for_stake, stake_for_energy, AccountInfo, AccountResource, Broadcast, ChainParameters,
    ConstantCall, DelegatedResource, NodeBlock, NodeInfo, NodeTransaction, Permission, Receipt,
    TransactionInfo, Trc20TransferItem,
};

use crate::tx::{self, json as txjson, RawData, Resource, SignedTransaction, TxContract, TxId};
use crate::TronAddress;

/// Why a node call failed. Never carries the API key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    #[error("{endpoint}: cannot reach the node: {reason}")]
    Transport { endpoint: String, reason: String },
    #[error("{endpoint}: no complete answer within {timeout_ms} ms")]
    Timeout { endpoint: String, timeout_ms: u64 },
    #[error("{endpoint}: HTTP {status}")]
    Http { endpoint: String, status: u16 },
    #[error("{endpoint}: the node refused: {message}")]
    Servlet { endpoint: String, message: String },
    #[error("{endpoint}: the node's answer is not what the protocol says: {reason}")]
    Malformed { endpoint: String, reason: String },
    #[error("{endpoint}: the answer is larger than {limit} bytes")]
    TooLarge { endpoint: String, limit: usize },
    #[error("node-built transaction refused: {0}")]
    NodeBuilt(tx::TxError),
    #[error("{endpoint}: gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        endpoint: String,
        attempts: u32,
        last: Box<NodeError>,
    },
    #[error("node URL {0:?} is not an http(s) URL")]
    BadUrl(String),
}

impl NodeError {
    /// Worth trying again: the request may not have reached the node, or the node was busy.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

/// A `TRON-PRO-API-KEY`; printed as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one place that sends or compares it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Backoff for transient failures: `base × 2^attempt`, capped, with up to 50% jitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `attempt` (1-based): the backoff less a random 0–50 %.
    pub fn delay(&self, attempt: u32) -> Duration {
        let jitter = rand::thread_rng().gen_range(0.0..0.5);
        self.backoff(attempt).mul_f64(1.0 - jitter)
    }

    /// The pause before retry `attempt` without jitter: `base × 2^(attempt − 1)`, at most
    /// `max_delay`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        exp.min(self.max_delay)
    }
}

/// Where and how to call the node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// e.g. `http://127.0.0.1:8090` or `https://api.trongrid.io`.
    pub base_url: String,
    /// Where `/walletsolidity/…` lives, if not the same node.
    pub solidity_url: Option<String>,
    pub api_key: Option<ApiKey>,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Larger answers are refused.
    pub max_response_bytes: usize,
}

impl NodeConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            solidity_url: None,
            api_key: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Which state a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// `/wallet/…`: the head; can still be reorganised away.
    Head,
    /// `/walletsolidity/…`: solidified; final.
    Solid,
}

/// The client.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    config: NodeConfig,
}

fn trim_url(url: &str) -> Result<String, NodeError> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(NodeError::BadUrl(url.to_string()));
    }
    Ok(url.to_string())
}

impl NodeClient {
    pub fn new(mut config: NodeConfig) -> Result<Self, NodeError> {
        config.base_url = trim_url(&config.base_url)?;
        if let Some(url) = &config.solidity_url {
            config.solidity_url = Some(trim_url(url)?);
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| NodeError::Transport {
                endpoint: "client".into(),
                reason: e.to_string(),
            })?;
        Ok(Self { http, config })
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    fn path(finality: Finality, endpoint: &str) -> String {
        match finality {
            Finality::Head => format!("/wallet/{endpoint}"),
            Finality::Solid => format!("/walletsolidity/{endpoint}"),
        }
    }

    /// One POST, no retry: the answer's JSON, or why there is none.
    async fn post_once(&self, path: &str, body: &Value) -> Result<Value, NodeError> {
        let base = if path.starts_with("/walletsolidity/") {
            self.config
                .solidity_url
                .as_deref()
                .unwrap_or(&self.config.base_url)
        } else {
            &self.config.base_url
        };
        let mut request = self
            .http
            .post(format!("{base}{path}"))
            .body(body.to_string());
        request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.header("TRON-PRO-API-KEY", key.expose());
        }
        let endpoint = path.to_string();
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                NodeError::Timeout {
                    endpoint: endpoint.clone(),
                    timeout_ms: self.config.timeout.as_millis() as u64,
                }
            } else {
                NodeError::Transport {
                    endpoint: endpoint.clone(),
                    reason: e.without_url().to_string(),
                }
            }
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let limit = self.config.max_response_bytes;
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > limit {
                return Err(NodeError::TooLarge { endpoint, limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(NodeError::Http {
                endpoint,
                status: status.as_u16(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| NodeError::Malformed {
            endpoint,
            reason: format!("not JSON: {e}"),
        })
    }

    /// A POST with retries for transient failures.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, NodeError> {
        let policy = &self.config.retry;
        let attempts = policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.post_once(path, body).await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_transient() && attempt < attempts => {
                    let pause = policy.delay(attempt);
                    tracing::warn!(endpoint = path, attempt, error = %e, ?pause, "transient node failure; retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) if e.is_transient() && attempts > 1 => {
                    return Err(NodeError::GaveUp {
                        endpoint: path.to_string(),
                        attempts,
                        last: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn call(
        &self,
        finality: Finality,
        endpoint: &str,
        body: Value,
    ) -> Result<(String, Value), NodeError> {
        let path = Self::path(finality, endpoint);
        let span = tracing::debug_span!("tron_node", endpoint = %path);
        let value = self.post(&path, &body).instrument(span).await?;
        Ok((path, value))
    }

    // --------------------------------------------------------------------------------------
    // Blocks

    /// `getnowblock`.
    pub async fn now_block(&self, finality: Finality) -> Result<NodeBlock, NodeError> {
        let (path, value) = self.call(finality, "getnowblock", json!({})).await?;
        NodeBlock::from_node(&path, &value)?.ok_or_else(|| NodeError::Malformed {
            endpoint: path,
            reason: "no head block".into(),
        })
    }

    /// `getblockbynum`; `None` when there is no such block (yet).
    pub async fn block_by_num(
        &self,
        num: u64,
        finality: Finality,
    ) -> Result<Option<NodeBlock>, NodeError> {
        let (path, value) = self
            .call(finality, "getblockbynum", json!({ "num": num }))
            .await?;
        NodeBlock::from_node(&path, &value)
    }

    /// `getblock {"detail": false}`: the newest block's header, the way TronWeb reads its
    /// reference block.
    pub async fn head_header(&self, finality: Finality) -> Result<NodeBlock, NodeError> {
        let (path, value) = self
            .call(finality, "getblock", json!({ "detail": false }))
            .await?;
        NodeBlock::from_node(&path, &value)?.ok_or_else(|| NodeError::Malformed {
            endpoint: path,
            reason: "no head block".into(),
        })
    }

    /// A reference block and the chain's time for building a transaction locally: the head's
    /// TAPOS fields and its timestamp (use it for `timestamp`, and `+ 60 s` for `expiration`).
    pub async fn reference(&self) -> Result<tx::TxParams, NodeError> {
        let head = self.head_header(Finality::Head).await?;
        Ok(tx::TxParams::new(head.ref_block(), head.timestamp))
    }

    /// `getnodeinfo`.
    pub async fn node_info(&self) -> Result<NodeInfo, NodeError> {
        let (path, value) = self.call(Finality::Head, "getnodeinfo", json!({})).await?;
        NodeInfo::from_node(&path, &value)
    }

    // --------------------------------------------------------------------------------------
    // Accounts

    /// `getaccount`; `None` when the account is not activated.
    pub async fn account(
        &self,
        address: &TronAddress,
        finality: Finality,
    ) -> Result<Option<AccountInfo>, NodeError> {
        let body = json!({ "address": address.to_hex(), "visible": false });
        let (path, value) = self.call(finality, "getaccount", body).await?;
        AccountInfo::from_node(&path, &value)
    }

    /// `getaccountresource`; `None` when the account does not exist.
    pub async fn account_resource(
        &self,
        address: &TronAddress,
        finality: Finality,
    ) -> Result<Option<AccountResource>, NodeError> {
        let body = json!({ "address": address.to_hex(), "visible": false });
        let (path, value) = self.call(finality, "getaccountresource", body).await?;
        AccountResource::from_node(&path, &value)
    }

    /// `getcandelegatedmaxsize` (sun; 0 when the node answers `{}`).
    pub async fn can_delegated_max_size(
        &self,
        owner: &TronAddress,
        resource: Resource,
        finality: Finality,
    ) -> Result<i64, NodeError> {
        let kind = i32::from(resource == Resource::Energy);
        let body = json!({ "owner_address": owner.to_hex(), "type": kind, "visible": false });
        let (path, value) = self.call(finality, "getcandelegatedmaxsize", body).await?;
        types::max_size_from_node(&path, &value)
    }

    /// `getdelegatedresourcev2`: every record from `from` to `to` (locked and unlocked apart).
    pub async fn delegated_resources(
        &self,
        from: &TronAddress,
        to: &TronAddress,
        finality: Finality,
    ) -> Result<Vec<DelegatedResource>, NodeError> {
        let body =
            json!({ "fromAddress": from.to_hex(), "toAddress": to.to_hex(), "visible": false });
        let (path, value) = self.call(finality, "getdelegatedresourcev2", body).await?;
        DelegatedResource::list_from_node(&path, &value)
    }

    // --------------------------------------------------------------------------------------
    // Transactions

    /// `broadcasthex` with exactly these bytes. Transient codes are retried with backoff (same
    /// bytes); the final reply is returned whatever its class. A lost response followed by a
    /// retry comes back as `DUP_TRANSACTION_ERROR`, i.e. [`BroadcastClass::AlreadyKnown`].
    pub async fn broadcast_hex(
        &self,
        transaction: &SignedTransaction,
    ) -> Result<Broadcast, NodeError> {
        let txid = transaction.txid();
        let body = json!({ "transaction": hex::encode(transaction.encode()) });
        self.broadcast("broadcasthex", txid, body).await
    }

    /// `broadcasttransaction` (the JSON form; the node re-encodes `raw_data`, so prefer
    /// [`NodeClient::broadcast_hex`]).
    pub async fn broadcast_transaction(
        &self,
        transaction: &SignedTransaction,
    ) -> Result<Broadcast, NodeError> {
        let txid = transaction.txid();
        let signatures: Vec<String> = transaction.signatures.iter().map(|s| s.to_hex()).collect();
        let body = json!({
            "txID": txid.to_hex(),
            "raw_data": txjson::to_node_json(&transaction.raw),
            "raw_data_hex": hex::encode(transaction.raw.encode()),
            "signature": signatures,
            "visible": false,
        });
        self.broadcast("broadcasttransaction", txid, body).await
    }

    async fn broadcast(
        &self,
        endpoint: &str,
        txid: TxId,
        body: Value,
    ) -> Result<Broadcast, NodeError> {
        let path = Self::path(Finality::Head, endpoint);
        let span = tracing::info_span!("tron_broadcast", endpoint = %path, txid = %txid);
        async {
            let policy = &self.config.retry;
            let attempts = policy.max_attempts.max(1);
            let mut attempt = 1;
            loop {
                let value = self.post(&path, &body).await?;
                let reply = Broadcast::from_node(&path, &value)?;
                if let Some(theirs) = &reply.txid {
                    if !theirs.eq_ignore_ascii_case(&txid.to_hex()) {
                        return Err(NodeError::Malformed {
                            endpoint: path.clone(),
                            reason: format!("the node answered for txid {theirs}"),
                        });
                    }
                }
                if reply.class() == BroadcastClass::Transient && attempt < attempts {
                    let pause = policy.delay(attempt);
                    tracing::warn!(code = %reply.code, attempt, ?pause, "node busy; broadcasting the same bytes again");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                    continue;
                }
                tracing::info!(code = %reply.code, class = ?reply.class(), "broadcast answered");
                return Ok(reply);
            }
        }
        .instrument(span)
        .await
    }

    /// `gettransactionbyid`; `None` when the view does not have it.
    pub async fn transaction(
        &self,
        txid: &TxId,
        finality: Finality,
    ) -> Result<Option<NodeTransaction>, NodeError> {
        let span = tracing::debug_span!("tron_tx", txid = %txid);
        let (path, value) = self
            .call(
                finality,
                "gettransactionbyid",
                json!({ "value": txid.to_hex() }),
            )
            .instrument(span)
            .await?;
        let found = NodeTransaction::from_node(&path, &value)?;
        if let Some(t) = &found {
            if &t.txid != txid {
                return Err(NodeError::Malformed {
                    endpoint: path,
                    reason: format!("asked for {txid}, got {}", t.txid),
                });
            }
        }
        Ok(found)
    }

    /// `gettransactioninfobyid`; `None` until the view has it in a block.
    pub async fn transaction_info(
        &self,
        txid: &TxId,
        finality: Finality,
    ) -> Result<Option<TransactionInfo>, NodeError> {
        let span = tracing::debug_span!("tron_tx_info", txid = %txid);
        let (path, value) = self
            .call(
                finality,
                "gettransactioninfobyid",
                json!({ "value": txid.to_hex(), "visible": false }),
            )
            .instrument(span)
            .await?;
        let found = TransactionInfo::from_node(&path, &value)?;
        if let Some(info) = &found {
            if &info.id != txid {
                return Err(NodeError::Malformed {
                    endpoint: path,
                    reason: format!("asked for {txid}, got {}", info.id),
                });
            }
        }
        Ok(found)
    }

    /// `gettransactioninfobyblocknum`: every receipt of a block.
    pub async fn transaction_infos_in_block(
        &self,
        num: u64,
        finality: Finality,
    ) -> Result<Vec<TransactionInfo>, NodeError> {
        let (path, value) = self
            .call(
                finality,
                "gettransactioninfobyblocknum",
                json!({ "num": num, "visible": false }),
            )
            .await?;
        TransactionInfo::list_from_node(&path, &value)
    }

    // --------------------------------------------------------------------------------------
    // Contracts and parameters

    /// `triggerconstantcontract` with raw calldata.
    pub async fn trigger_constant(
        &self,
        owner: &TronAddress,
        contract: &TronAddress,
        data: &[u8],
        finality: Finality,
    ) -> Result<ConstantCall, NodeError> {
        let body = json!({
            "owner_address": owner.to_hex(),
            "contract_address": contract.to_hex(),
            "data": hex::encode(data),
            "visible": false,
        });
        let (path, value) = self.call(finality, "triggerconstantcontract", body).await?;
        ConstantCall::from_node(&path, &value)
    }

    /// A TRC20 `balanceOf(holder)` (base units).
    pub async fn trc20_balance_of(
        &self,
        contract: &TronAddress,
        holder: &TronAddress,
        finality: Finality,
    ) -> Result<u128, NodeError> {
        let body = json!({
            "owner_address": holder.to_hex(),
            "contract_address": contract.to_hex(),
            "function_selector": "balanceOf(address)",
            "parameter": hex::encode(&crate::trc20::balance_of_calldata(holder)[4..]),
            "visible": false,
        });
        let (path, value) = self.call(finality, "triggerconstantcontract", body).await?;
        ConstantCall::from_node(&path, &value)?.uint_result(&path)
    }

    /// `getchainparameters`.
    pub async fn chain_parameters(&self) -> Result<ChainParameters, NodeError> {
        let (path, value) = self
            .call(Finality::Head, "getchainparameters", json!({}))
            .await?;
        ChainParameters::from_node(&path, &value)
    }

    // --------------------------------------------------------------------------------------
    // Node-built transactions (a pre-check; the engine signs what it builds itself)

    /// Asks the node to build a delegate or undelegate transaction (which validates it on the
    /// node) and returns its raw data only if it is exactly `contract`: one contract, the same
    /// fields and permission, no memo, a sane expiration, a `txID` and `raw_data_hex` that agree
    /// with the JSON. Anything else is [`NodeError::NodeBuilt`].
    pub async fn build_via_node(&self, contract: &TxContract) -> Result<RawData, NodeError> {
        let (endpoint, mut body) = match &contract.call {
            tx::ContractCall::DelegateResource(d) => (
                "delegateresource",
                json!({
                    "owner_address": d.owner.to_hex(),
                    "receiver_address": d.receiver.to_hex(),
                    "balance": d.balance,
                    "resource": d.resource.name().unwrap_or("BANDWIDTH"),
                    "lock": d.lock,
                    "lock_period": d.lock_period,
                    "visible": false,
                }),
            ),
            tx::ContractCall::UnDelegateResource(u) => (
                "undelegateresource",
                json!({
                    "owner_address": u.owner.to_hex(),
                    "receiver_address": u.receiver.to_hex(),
                    "balance": u.balance,
                    "resource": u.resource.name().unwrap_or("BANDWIDTH"),
                    "visible": false,
                }),
            ),
            _ => {
                return Err(NodeError::NodeBuilt(tx::TxError::Unbuildable(
                    "only delegate and undelegate are built by the node".into(),
                )))
            }
        };
        if contract.permission_id != 0 {
            body["Permission_id"] = json!(contract.permission_id);
        }
        let (path, value) = self.call(Finality::Head, endpoint, body).await?;
        types::check_error(&path, &value)?;
        let parsed = txjson::parse_node_json(&value).map_err(NodeError::NodeBuilt)?;
        parsed.check_claims().map_err(NodeError::NodeBuilt)?;
        let raw_hex = parsed
            .claimed_raw_data_hex
            .clone()
            .ok_or_else(|| NodeError::NodeBuilt(tx::TxError::Json("no raw_data_hex".into())))?;
        let raw = tx::verify_node_built(&raw_hex, contract, 0).map_err(NodeError::NodeBuilt)?;
        if raw != parsed.raw {
            return Err(NodeError::NodeBuilt(tx::TxError::NodeMismatch(
                "raw_data and raw_data_hex differ".into(),
            )));
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    fn millis(policy: &RetryPolicy, attempts: std::ops::RangeInclusive<u32>) -> Vec<u128> {
        attempts.map(|a| policy.backoff(a).as_millis()).collect()
    }

    #[test]
    fn the_backoff_doubles_per_attempt_and_stops_at_the_maximum() {
        assert_eq!(millis(&policy(), 1..=6), [100, 200, 400, 800, 1_000, 1_000]);
        // The documented defaults: 250 ms doubling to 5 s.
        assert_eq!(
            millis(&RetryPolicy::default(), 1..=7),
            [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]
        );
        // Attempt 0 counts as the first; shifts past 32 bits stay at the maximum.
        assert_eq!(policy().backoff(0), Duration::from_millis(100));
        for attempt in [31, 32, 40, u32::MAX] {
            assert_eq!(
                policy().backoff(attempt),
                Duration::from_secs(1),
                "{attempt}"
            );
        }
    }

    #[test]
    fn the_jitter_takes_off_at_most_half_of_the_backoff() {
        let policy = policy();
        for attempt in [0, 1, 2, 3, 4, 5, 6, 40, u32::MAX] {
            let backoff = policy.backoff(attempt);
            let delays: Vec<Duration> = (0..500).map(|_| policy.delay(attempt)).collect();
            for delay in &delays {
                assert!(
                    *delay >= backoff / 2 && *delay <= backoff,
                    "attempt {attempt}: {delay:?} outside {:?}..={backoff:?}",
                    backoff / 2
                );
            }
            // Jittered, not fixed: 500 draws land on both sides of the middle of the range.
            let middle = backoff.mul_f64(0.75);
            assert!(delays.iter().any(|d| *d < middle), "attempt {attempt}");
            assert!(delays.iter().any(|d| *d > middle), "attempt {attempt}");
        }
    }
}
