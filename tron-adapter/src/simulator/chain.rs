//! The chain: blocks, the pool of accepted transactions, the world after each unsolidified block
//! (so the solidified view and a reorganisation are copies kept, not replays), the txID index and
//! the duplicate cache. Time is virtual: each block is `slot_ms` after its parent, plus whatever
//! [`Chain::advance`] added, so tests can move a day in one call.

use std::collections::{HashMap, HashSet, VecDeque};

use super::block::{Block, BlockTx};
use super::contract::UsdtCosts;
use super::execute::{self, Reject};
use super::state::{Account, World};
use crate::node::ResponseCode;
use crate::tx::{build::MAX_EXPIRATION_MS, Resource, SignedTransaction, TxId};
use crate::{PrivateKey, TronAddress};

/// `TRANSACTION_MAX_BYTE_SIZE`.
pub const MAX_TRANSACTION_BYTES: usize = 500 * 1024;
/// TAPOS looks at the last 65,536 blocks (one per 2-byte `ref_block_bytes`).
pub const TAPOS_WINDOW: u64 = 65_536;

/// Which state a query reads: the head (`/wallet/…`) or the solidified block
/// (`/walletsolidity/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Head,
    Solid,
}

/// A change to the world made by the simulator's operator (admin endpoints), not by a
/// transaction. Applied at once to the head, and again after a reorganisation.
#[derive(Debug, Clone)]
pub enum WorldOp {
    Activate {
        address: TronAddress,
        balance: i64,
        usdt: u128,
        active_keys: Option<Vec<TronAddress>>,
    },
    Stake {
        address: TronAddress,
        amount: i64,
        resource: Resource,
    },
}

#[derive(Debug, Clone)]
struct Pooled {
    tx: SignedTransaction,
    txid: TxId,
    /// False for a transaction the faults say must never be included.
    include: bool,
}

/// Settings the chain itself needs.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// Blocks on top of a block before it is solid.
    pub confirmations: u64,
    /// Virtual milliseconds between blocks.
    pub slot_ms: i64,
    pub costs: UsdtCosts,
    /// Pool size at which broadcasts get `SERVER_BUSY`.
    pub max_pending: usize,
}

pub struct Chain {
    settings: ChainSettings,
    blocks: Vec<Block>,
    /// Post-block worlds of blocks `head + 1 - len ..= head` (at most `confirmations + 1`).
    snapshots: VecDeque<World>,
    head_world: World,
    pool_world: World,
    pool: Vec<Pooled>,
    /// Operator changes made after block `.0`, kept until that block is solid.
    ops: Vec<(u64, WorldOp)>,
    index: HashMap<TxId, (u64, usize)>,
    known: HashSet<TxId>,
    advance_ms: i64,
    fork: u64,
    /// The solid block never goes back: after a reorganisation to it, it stays solid until K
    /// new blocks are on top of the new head.
    solid_floor: u64,
    witness_key: PrivateKey,
}

impl Chain {
    /// A chain holding only its genesis block over `genesis` (whose `latest_block_ts` is the
    /// genesis time).
    pub fn new(settings: ChainSettings, genesis: World, witness_key: PrivateKey) -> Self {
        let block = Block::seal(
            0,
            [0u8; 32],
            genesis.latest_block_ts,
            Vec::new(),
            &witness_key,
            0,
        );
        let mut snapshots = VecDeque::new();
        snapshots.push_back(genesis.clone());
        Self {
            settings,
            blocks: vec![block],
            snapshots,
            head_world: genesis.clone(),
            pool_world: genesis,
            pool: Vec::new(),
            ops: Vec::new(),
            index: HashMap::new(),
            known: HashSet::new(),
            advance_ms: 0,
            fork: 0,
            solid_floor: 0,
            witness_key,
        }
    }

    pub fn settings(&self) -> &ChainSettings {
        &self.settings
    }

    pub fn head(&self) -> &Block {
        self.blocks
            .last()
            .expect("the chain always has its genesis block")
    }

    pub fn head_number(&self) -> u64 {
        self.head().number
    }

    pub fn solid_number(&self) -> u64 {
        let head = self.head_number();
        head.saturating_sub(self.settings.confirmations)
            .max(self.solid_floor)
            .min(head)
    }

    /// The newest block a view sees.
    pub fn top(&self, view: View) -> &Block {
        match view {
            View::Head => self.head(),
            View::Solid => &self.blocks[self.solid_number() as usize],
        }
    }

    /// Block `number`, if the view sees it.
    pub fn block(&self, number: u64, view: View) -> Option<&Block> {
        (number <= self.top(view).number)
            .then(|| self.blocks.get(number as usize))
            .flatten()
    }

    pub fn block_by_id(&self, id: &[u8; 32], view: View) -> Option<&Block> {
        let number = u64::from_be_bytes(id[..8].try_into().ok()?);
        self.block(number, view).filter(|b| &b.id == id)
    }

    /// The world a view reads.
    pub fn world(&self, view: View) -> &World {
        match view {
            View::Head => &self.head_world,
            View::Solid => {
                let base = self.head_number() + 1 - self.snapshots.len() as u64;
                &self.snapshots[(self.solid_number() - base) as usize]
            }
        }
    }

    /// An included transaction and its block, if the view sees it.
    pub fn transaction(&self, txid: &TxId, view: View) -> Option<(&Block, &BlockTx)> {
        let (number, position) = *self.index.get(txid)?;
        let block = self.block(number, view)?;
        Some((block, block.txs.get(position)?))
    }

    /// Moves virtual time forward: the next block is `ms` later than it would have been.
    pub fn advance(&mut self, ms: i64) {
        self.advance_ms = self.advance_ms.saturating_add(ms.max(0));
    }

    /// The checks before execution: size, TAPOS, expiration.
    fn precheck(&self, tx: &SignedTransaction, size: usize) -> Result<(), Reject> {
        if size > MAX_TRANSACTION_BYTES {
            return Err(Reject::new(
                ResponseCode::TooBigTransactionError,
                format!("Transaction size is too big: {size} bytes"),
            ));
        }
        self.check_tapos(tx)?;
        let head_ts = self.head().timestamp;
        let expiration = tx.raw.expiration;
        if expiration <= head_ts || expiration > head_ts + MAX_EXPIRATION_MS {
            return Err(Reject::new(
                ResponseCode::TransactionExpirationError,
                "Transaction expired",
            ));
        }
        Ok(())
    }

    /// TAPOS: the newest block among the last 65,536 whose number ends in `ref_block_bytes`
    /// must have `ref_block_hash` as bytes 8..16 of its id.
    fn check_tapos(&self, tx: &SignedTransaction) -> Result<(), Reject> {
        let fail = || Reject::new(ResponseCode::TaposError, "Tapos check error.");
        let (Ok(bytes), Ok(hash)) = (
            <[u8; 2]>::try_from(tx.raw.ref_block_bytes.as_slice()),
            <[u8; 8]>::try_from(tx.raw.ref_block_hash.as_slice()),
        ) else {
            return Err(fail());
        };
        let low = u64::from(u16::from_be_bytes(bytes));
        let head = self.head_number();
        // The newest block number at or below the head whose low 16 bits are `low`.
        let candidate = if head & 0xffff >= low {
            head - ((head & 0xffff) - low)
        } else if head >= TAPOS_WINDOW {
            head - (head & 0xffff) - TAPOS_WINDOW + low
        } else {
            return Err(fail());
        };
        if head - candidate >= TAPOS_WINDOW {
            return Err(fail());
        }
        match self.blocks.get(candidate as usize) {
            Some(block) if block.id[8..16] == hash => Ok(()),
            _ => Err(fail()),
        }
    }

    /// Accepts a transaction into the pool, as `broadcasttransaction` does, or says why not.
    /// With `include` false it is accepted but will never be put in a block.
    pub fn broadcast(&mut self, tx: SignedTransaction, include: bool) -> Result<TxId, Reject> {
        let txid = tx.txid();
        if self.known.contains(&txid) || self.index.contains_key(&txid) {
            return Err(Reject::new(
                ResponseCode::DupTransactionError,
                "Dup transaction.",
            ));
        }
        if self.pool.len() >= self.settings.max_pending {
            return Err(Reject::new(ResponseCode::ServerBusy, "Server busy."));
        }
        self.precheck(&tx, tx.encode().len())?;
        let mut world = self.pool_world.clone();
        execute::process(&mut world, &tx, &self.settings.costs)?;
        self.pool_world = world;
        self.known.insert(txid);
        self.pool.push(Pooled { tx, txid, include });
        Ok(txid)
    }

    /// Validates a contract against the head (what the node's build endpoints do).
    pub fn validate_contract(
        &self,
        call: &crate::tx::ContractCall,
        fee_limit: i64,
    ) -> Result<(), Reject> {
        execute::validate(&self.head_world, call, fee_limit)
    }

    /// Produces the next block from the pool. Returns its number.
    pub fn produce_block(&mut self) -> u64 {
        let parent = self.head().clone();
        let timestamp =
            parent.timestamp + self.settings.slot_ms + std::mem::take(&mut self.advance_ms);
        let number = parent.number + 1;
        let mut world = self.head_world.clone();
        let mut txs = Vec::new();
        for pooled in std::mem::take(&mut self.pool) {
            if !pooled.include {
                continue; // accepted, never included: stays in the duplicate cache
            }
            let size = pooled.tx.encode().len();
            let result = self
                .precheck(&pooled.tx, size)
                .and_then(|()| execute::process(&mut world, &pooled.tx, &self.settings.costs));
            match result {
                Ok(receipt) => txs.push(BlockTx {
                    tx: pooled.tx,
                    txid: pooled.txid,
                    receipt,
                }),
                Err(_) => {
                    self.known.remove(&pooled.txid);
                }
            }
        }
        world.latest_block_ts = timestamp;
        for (position, tx) in txs.iter().enumerate() {
            self.index.insert(tx.txid, (number, position));
        }
        let block = Block::seal(
            number,
            parent.id,
            timestamp,
            txs,
            &self.witness_key,
            self.fork,
        );
        self.blocks.push(block);
        self.head_world = world;
        self.pool_world = self.head_world.clone();
        self.snapshots.push_back(self.head_world.clone());
        let solid = self.solid_number();
        self.solid_floor = solid;
        // Keep the worlds of blocks solid..=head.
        while self.head_number() + 1 - (self.snapshots.len() as u64) < solid {
            self.snapshots.pop_front();
        }
        self.ops.retain(|(after, _)| *after >= solid);
        tracing::trace!(block = number, "simulator produced a block");
        number
    }

    /// Drops every unsolidified block. Their transactions vanish (`requeue` false: a rebroadcast
    /// of the same bytes is accepted again) or go back to the pool (`requeue` true, as a node
    /// switching forks does). Returns how many blocks were dropped.
    pub fn reorg(&mut self, requeue: bool) -> u64 {
        let solid = self.solid_number();
        let head = self.head_number();
        if solid == head {
            return 0;
        }
        let dropped: Vec<Block> = self.blocks.drain(solid as usize + 1..).collect();
        let mut requeued = Vec::new();
        for block in &dropped {
            for tx in &block.txs {
                self.index.remove(&tx.txid);
                if requeue {
                    requeued.push(Pooled {
                        tx: tx.tx.clone(),
                        txid: tx.txid,
                        include: true,
                    });
                } else {
                    self.known.remove(&tx.txid);
                }
            }
        }
        let keep = self.snapshots.len() - (head - solid) as usize;
        self.snapshots.truncate(keep);
        self.solid_floor = solid;
        self.head_world = self
            .snapshots
            .back()
            .cloned()
            .expect("the solid world is kept");
        let ops: Vec<WorldOp> = std::mem::take(&mut self.ops)
            .into_iter()
            .map(|(_, op)| op)
            .collect();
        for op in ops {
            // These applied before; against an earlier world they still do (they only add).
            let _ = self.apply_op(op);
        }
        self.fork += 1;
        let mut pool = requeued;
        pool.append(&mut self.pool);
        self.rebuild_pool(pool);
        tracing::info!(
            dropped = head - solid,
            new_head = solid,
            "simulator reorganised"
        );
        head - solid
    }

    /// Re-validates pooled transactions on top of the head world.
    fn rebuild_pool(&mut self, pool: Vec<Pooled>) {
        let mut world = self.head_world.clone();
        let mut kept = Vec::new();
        for pooled in pool {
            let size = pooled.tx.encode().len();
            let ok = self
                .precheck(&pooled.tx, size)
                .and_then(|()| execute::process(&mut world, &pooled.tx, &self.settings.costs))
                .is_ok();
            if ok {
                self.known.insert(pooled.txid);
                kept.push(pooled);
            } else {
                self.known.remove(&pooled.txid);
            }
        }
        self.pool_world = world;
        self.pool = kept;
    }

    /// Applies an operator change to the head now (and after any reorganisation).
    pub fn apply_op(&mut self, op: WorldOp) -> Result<(), Reject> {
        let world = &mut self.head_world;
        match &op {
            WorldOp::Activate {
                address,
                balance,
                usdt,
                active_keys,
            } => {
                if *balance < 0 {
                    return Err(Reject::validate("balance must not be negative"));
                }
                let now = world.latest_block_ts;
                let account = world
                    .accounts
                    .entry(*address)
                    .or_insert_with(|| Account::new(*address, 0, now));
                if account.is_contract {
                    return Err(Reject::validate("the address is a contract"));
                }
                account.balance = account.balance.saturating_add(*balance);
                if let Some(keys) = active_keys {
                    account.active_keys = keys.clone();
                }
                if *usdt > 0 {
                    *world.usdt.entry(*address).or_default() += *usdt;
                }
            }
            WorldOp::Stake {
                address,
                amount,
                resource,
            } => {
                execute::validate_freeze(world, address, *amount, *resource)?;
                execute::freeze(world, address, *amount, *resource);
            }
        }
        self.ops.push((self.head_number(), op));
        let pool = std::mem::take(&mut self.pool);
        self.rebuild_pool(pool);
        Ok(())
    }

    /// Transactions waiting in the pool.
    pub fn pending(&self) -> usize {
        self.pool.len()
    }
}
