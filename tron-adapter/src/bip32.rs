//! BIP32 private derivation on secp256k1 (HMAC-SHA512, as the BIP specifies), for deposit
//! addresses: one seed, and account number `i` gets the key at m/44'/195'/0'/0/i (SLIP-44 coin
//! 195 is TRON). The seed is 64 bytes (what BIP39 produces); all secrets live in zeroized memory.

use std::fmt;

use hmac::{Hmac, Mac};
use k256::elliptic_curve::PrimeField;
use k256::{FieldBytes, Scalar};
use sha2::Sha512;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::PrivateKey;

/// Added to an index for hardened derivation (written `i'` or `iH`).
pub const HARDENED: u32 = 0x8000_0000;

/// Why a derivation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bip32Error {
    #[error("a BIP32 seed is 16 to 64 bytes, got {0}")]
    SeedLength(usize),
    #[error("the deposit seed must be 64 bytes, got {0}")]
    DepositSeedLength(usize),
    #[error("index {0} gives an invalid key (probability below 2^-127); use the next index")]
    InvalidChild(u32),
    #[error("deposit index {0} is not below 2^31")]
    IndexTooLarge(u32),
}

/// A private key with its chain code.
pub struct ExtendedPrivateKey {
    key: Zeroizing<[u8; 32]>,
    chain_code: Zeroizing<[u8; 32]>,
}

type HmacSha512 = Hmac<Sha512>;

fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let mut mac = HmacSha512::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn scalar(bytes: &[u8; 32]) -> Option<Scalar> {
    Option::from(Scalar::from_repr(FieldBytes::from(*bytes)))
}

impl ExtendedPrivateKey {
    /// The master key of `seed`: HMAC-SHA512(key = "Bitcoin seed", seed).
    pub fn master(seed: &[u8]) -> Result<Self, Bip32Error> {
        if !(16..=64).contains(&seed.len()) {
            return Err(Bip32Error::SeedLength(seed.len()));
        }
        let i = hmac_sha512(b"Bitcoin seed", &[seed]);
        Self::from_halves(&i, 0)
    }

    fn from_halves(i: &[u8; 64], index: u32) -> Result<Self, Bip32Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&i[..32]);
        let mut chain_code = Zeroizing::new([0u8; 32]);
        chain_code.copy_from_slice(&i[32..]);
        match scalar(&key) {
            Some(k) if !bool::from(k.is_zero()) => Ok(Self { key, chain_code }),
            _ => Err(Bip32Error::InvalidChild(index)),
        }
    }

    /// CKDpriv: the child at `index` (hardened when `index >= HARDENED`).
    pub fn child(&self, index: u32) -> Result<Self, Bip32Error> {
        let i = if index >= HARDENED {
            hmac_sha512(
                self.chain_code.as_slice(),
                &[&[0u8], self.key.as_slice(), &index.to_be_bytes()],
            )
        } else {
            let public = self
                .private_key()
                .map_err(|_| Bip32Error::InvalidChild(index))?
                .public_key()
                .to_compressed_bytes();
            hmac_sha512(self.chain_code.as_slice(), &[&public, &index.to_be_bytes()])
        };
        let mut il = Zeroizing::new([0u8; 32]);
        il.copy_from_slice(&i[..32]);
        let mut tweak = scalar(&il).ok_or(Bip32Error::InvalidChild(index))?;
        let mut parent = scalar(&self.key).ok_or(Bip32Error::InvalidChild(index))?;
        let mut child = tweak + parent;
        tweak.zeroize();
        parent.zeroize();
        if bool::from(child.is_zero()) {
            return Err(Bip32Error::InvalidChild(index));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        let mut repr = child.to_repr();
        key.copy_from_slice(&repr);
        repr.as_mut_slice().zeroize();
        child.zeroize();
        let mut chain_code = Zeroizing::new([0u8; 32]);
        chain_code.copy_from_slice(&i[32..]);
        Ok(Self { key, chain_code })
    }

    /// Follows `path` (indices, hardened ones with [`HARDENED`] added).
    pub fn derive(&self, path: &[u32]) -> Result<Self, Bip32Error> {
        let mut node = Self {
            key: self.key.clone(),
            chain_code: self.chain_code.clone(),
        };
        for index in path {
            node = node.child(*index)?;
        }
        Ok(node)
    }

    pub fn private_key(&self) -> Result<PrivateKey, crate::keys::KeyError> {
        PrivateKey::from_bytes(self.key.as_slice())
    }

    pub fn chain_code(&self) -> &[u8; 32] {
        &self.chain_code
    }
}

impl fmt::Debug for ExtendedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExtendedPrivateKey(<redacted>)")
    }
}

/// m/44'/195'/0'/0/i.
pub fn deposit_path(index: u32) -> Result<[u32; 5], Bip32Error> {
    if index >= HARDENED {
        return Err(Bip32Error::IndexTooLarge(index));
    }
    Ok([44 | HARDENED, 195 | HARDENED, HARDENED, 0, index])
}

/// The 64-byte seed deposit addresses are derived from. Never printed.
pub struct DepositSeed(Zeroizing<[u8; 64]>);

impl DepositSeed {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Bip32Error> {
        let mut seed = Zeroizing::new([0u8; 64]);
        if bytes.len() != 64 {
            return Err(Bip32Error::DepositSeedLength(bytes.len()));
        }
        seed.copy_from_slice(bytes);
        Ok(Self(seed))
    }

    /// 64 random bytes from the operating system.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut_slice());
        Self(seed)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// The key of deposit index `index` (m/44'/195'/0'/0/index).
    pub fn deposit_key(&self, index: u32) -> Result<PrivateKey, Bip32Error> {
        let node = ExtendedPrivateKey::master(self.0.as_slice())?.derive(&deposit_path(index)?)?;
        node.private_key()
            .map_err(|_| Bip32Error::InvalidChild(index))
    }
}

impl fmt::Debug for DepositSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DepositSeed(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP-0032 "Test vector 1": seed 000102…0f; private keys and chain codes per path.
    #[test]
    fn bip32_test_vector_1_private_keys_and_chain_codes_are_reproduced() {
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let master = ExtendedPrivateKey::master(&seed).unwrap();
        assert_eq!(
            hex::encode(master.private_key().unwrap().to_bytes().as_slice()),
            "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"
        );
        assert_eq!(
            hex::encode(master.chain_code()),
            "873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508"
        );
        let h = HARDENED;
        let cases: [(&[u32], &str); 5] = [
            (
                &[h],
                "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea",
            ),
            (
                &[h, 1],
                "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368",
            ),
            (
                &[h, 1, 2 | h],
                "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca",
            ),
            (
                &[h, 1, 2 | h, 2],
                "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4",
            ),
            (
                &[h, 1, 2 | h, 2, 1_000_000_000],
                "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8",
            ),
        ];
        for (path, expected) in cases {
            let node = master.derive(path).unwrap();
            assert_eq!(
                hex::encode(node.private_key().unwrap().to_bytes().as_slice()),
                expected,
                "{path:?}"
            );
        }
        assert_eq!(
            hex::encode(master.derive(&[h]).unwrap().chain_code()),
            "47fdacbd0f1097043b78c63c20c34ef4ed9a111d980047ad16282c7ae6236141"
        );
    }

    fn pbkdf2_hmac_sha512(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 64] {
        let mut u = *hmac_sha512(password, &[salt, &1u32.to_be_bytes()]);
        let mut out = u;
        for _ in 1..rounds {
            u = *hmac_sha512(password, &[&u]);
            out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
        }
        out
    }

    /// The BIP39 test mnemonic "abandon … about" gives, at m/44'/195'/0'/0/0, the key TronBox's
    /// local network funds (hyperlane-xyz tron-sdk `TEST_TRON_PRIVATE_KEY`, derived the same way),
    /// whose address is the one Ian Coleman's BIP39 tool and the Ledger TRON app's tests show.
    #[test]
    fn the_tron_path_of_the_bip39_test_mnemonic_gives_the_published_key() {
        let mnemonic = format!("{} about", ["abandon"; 11].join(" "));
        let seed = pbkdf2_hmac_sha512(mnemonic.as_bytes(), b"mnemonic", 2048);
        assert_eq!(
            hex::encode(&seed[..8]),
            "5eb00bbddcf06908",
            "BIP39 seed of the test mnemonic"
        );
        let key = DepositSeed::from_bytes(&seed)
            .unwrap()
            .deposit_key(0)
            .unwrap();
        assert_eq!(
            hex::encode(key.to_bytes().as_slice()),
            "b5a4cea271ff424d7c31dc12a3e43e401df7a40d7412a15750f3f0b6b5449a28"
        );
        assert_eq!(
            key.address().to_base58(),
            "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH",
            "the first TRON address of the test mnemonic"
        );
    }

    #[test]
    fn different_indices_give_different_addresses_and_the_same_index_the_same_one() {
        let seed = DepositSeed::from_bytes(&[7u8; 64]).unwrap();
        let a0 = seed.deposit_key(0).unwrap().address();
        let a1 = seed.deposit_key(1).unwrap().address();
        assert_ne!(a0, a1);
        assert_eq!(seed.deposit_key(1).unwrap().address(), a1);
    }

    #[test]
    fn bad_seed_lengths_and_hardened_deposit_indices_are_refused() {
        assert_eq!(
            DepositSeed::from_bytes(&[1u8; 32]).unwrap_err(),
            Bip32Error::DepositSeedLength(32)
        );
        assert_eq!(
            ExtendedPrivateKey::master(&[1u8; 8]).unwrap_err(),
            Bip32Error::SeedLength(8)
        );
        let seed = DepositSeed::from_bytes(&[7u8; 64]).unwrap();
        assert_eq!(
            seed.deposit_key(HARDENED).unwrap_err(),
            Bip32Error::IndexTooLarge(HARDENED)
        );
        assert_eq!(format!("{seed:?}"), "DepositSeed(<redacted>)");
    }
}
