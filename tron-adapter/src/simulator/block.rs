//! Blocks: header, id (8-byte big-endian number ‖ 24 bytes of the header hash, as the node's
//! `blockID`), the witness signature, and the included transactions with their receipts.

use super::execute::Receipt;
use crate::keys::sha256;
use crate::signing::{sign_digest, Signature};
use crate::tx::{SignedTransaction, TxId};
use crate::{PrivateKey, TronAddress};

/// The `version` real blocks carry today.
pub const BLOCK_VERSION: i64 = 34;

/// An included transaction.
#[derive(Debug, Clone)]
pub struct BlockTx {
    pub tx: SignedTransaction,
    pub txid: TxId,
    pub receipt: Receipt,
}

/// One block.
#[derive(Debug, Clone)]
pub struct Block {
    pub number: u64,
    pub id: [u8; 32],
    pub parent: [u8; 32],
    pub timestamp: i64,
    pub tx_trie_root: [u8; 32],
    pub witness: TronAddress,
    pub witness_signature: Signature,
    pub txs: Vec<BlockTx>,
}

/// A Merkle root of the txIDs (sha256 of pairs); all zeros for an empty block, as on mainnet.
fn tx_trie_root(txs: &[BlockTx]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = txs.iter().map(|t| t.txid.0).collect();
    if level.is_empty() {
        return [0u8; 32];
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => {
                    let mut both = [0u8; 64];
                    both[..32].copy_from_slice(a);
                    both[32..].copy_from_slice(b);
                    sha256(&both)
                }
                [a] => *a,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}

impl Block {
    /// Seals a block: computes the trie root, the id and the witness signature. `fork` makes
    /// a block produced after a reorganisation differ from the one it replaces.
    pub fn seal(
        number: u64,
        parent: [u8; 32],
        timestamp: i64,
        txs: Vec<BlockTx>,
        witness_key: &PrivateKey,
        fork: u64,
    ) -> Self {
        let root = tx_trie_root(&txs);
        let witness = witness_key.address();
        let mut header = Vec::with_capacity(128);
        header.extend_from_slice(&number.to_be_bytes());
        header.extend_from_slice(&parent);
        header.extend_from_slice(&timestamp.to_be_bytes());
        header.extend_from_slice(&root);
        header.extend_from_slice(witness.as_bytes());
        header.extend_from_slice(&fork.to_be_bytes());
        let hash = sha256(&header);
        let mut id = hash;
        id[..8].copy_from_slice(&number.to_be_bytes());
        Self {
            number,
            id,
            parent,
            timestamp,
            tx_trie_root: root,
            witness,
            witness_signature: sign_digest(witness_key, &hash),
            txs,
        }
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_id_starts_with_its_number() {
        let key = PrivateKey::from_bytes(&[7u8; 32]).unwrap();
        let block = Block::seal(66_987_627, [1u8; 32], 1_000, Vec::new(), &key, 0);
        assert_eq!(&block.id_hex()[..16], "0000000003fe266b");
        assert_eq!(block.tx_trie_root, [0u8; 32]);
        let other = Block::seal(66_987_627, [1u8; 32], 1_000, Vec::new(), &key, 1);
        assert_ne!(block.id, other.id, "a fork changes the id");
    }
}
