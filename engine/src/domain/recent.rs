//! A bounded memory of the ids an aggregate settled most recently.
//!
//! A hot aggregate (an active account, a pool wallet) sees a new order or deposit every few
//! seconds, for ever. What it must remember of the live ones (a held reservation) is bounded by
//! what is in flight; what it remembers of the settled ones would grow with its whole history,
//! and with it the in-memory state, every snapshot and every cold load. So the settled ids are
//! kept in a window of the most recent [`SETTLED_IDS_KEPT`], oldest forgotten first.
//!
//! The window is a pure function of the event history: `apply` records into it in event order,
//! and it serialises as its entries, oldest first, so a snapshot restores exactly the window a
//! full replay builds. An id that has left the window is no longer refused by the aggregate
//! itself; the aggregates that own those ids (Order, Deposit) and the command log refuse the
//! repeat instead (docs/adr/0007-bounded-aggregate-state.md).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many settled order ids (and credited deposit ids) an aggregate remembers.
pub const SETTLED_IDS_KEPT: usize = 1_024;

/// The last `N` keys recorded, each with a value; recording one more forgets the oldest.
/// Serialised as the list of `[key, value]` entries, oldest first.
#[derive(Clone)]
pub struct RecentMap<K, V, const N: usize> {
    /// Keys, oldest first.
    order: VecDeque<K>,
    values: HashMap<K, V>,
}

impl<K, V, const N: usize> Default for RecentMap<K, V, N> {
    fn default() -> Self {
        Self {
            order: VecDeque::new(),
            values: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, V, const N: usize> RecentMap<K, V, N> {
    /// Records `key` as the newest entry, forgetting the oldest beyond `N`. A key already in the
    /// window keeps its place and takes the new value.
    pub fn record(&mut self, key: K, value: V) {
        if let Some(held) = self.values.get_mut(&key) {
            *held = value;
            return;
        }
        self.order.push_back(key.clone());
        self.values.insert(key, value);
        while self.order.len() > N {
            if let Some(oldest) = self.order.pop_front() {
                self.values.remove(&oldest);
            }
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.values.get(key)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.values.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.order.iter().map(|k| (k, &self.values[k]))
    }
}

impl<K: Eq + Hash + Clone, V: PartialEq, const N: usize> PartialEq for RecentMap<K, V, N> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<K: Eq + Hash + Clone, V: Eq, const N: usize> Eq for RecentMap<K, V, N> {}

impl<K: Eq + Hash + Clone + fmt::Debug, V: fmt::Debug, const N: usize> fmt::Debug
    for RecentMap<K, V, N>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K, V, const N: usize> Serialize for RecentMap<K, V, N>
where
    K: Eq + Hash + Clone + Serialize,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, K, V, const N: usize> Deserialize<'de> for RecentMap<K, V, N>
where
    K: Eq + Hash + Clone + DeserializeOwned,
    V: DeserializeOwned,
{
    /// Recorded again in order, so a longer list keeps only its newest `N`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<(K, V)>::deserialize(deserializer)?;
        let mut recent = Self::default();
        for (key, value) in entries {
            recent.record(key, value);
        }
        Ok(recent)
    }
}

/// The last `N` keys recorded; recording one more forgets the oldest. Serialised as the list of
/// keys, oldest first.
#[derive(Clone)]
pub struct RecentSet<K, const N: usize>(RecentMap<K, (), N>);

impl<K, const N: usize> Default for RecentSet<K, N> {
    fn default() -> Self {
        Self(RecentMap::default())
    }
}

impl<K: Eq + Hash + Clone, const N: usize> PartialEq for RecentSet<K, N> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Eq + Hash + Clone, const N: usize> Eq for RecentSet<K, N> {}

impl<K: Eq + Hash + Clone, const N: usize> RecentSet<K, N> {
    /// Records `key` as the newest entry (a key already in the window keeps its place).
    pub fn record(&mut self, key: K) {
        self.0.record(key, ());
    }

    pub fn contains(&self, key: &K) -> bool {
        self.0.contains(key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl<K: Eq + Hash + Clone + fmt::Debug, const N: usize> fmt::Debug for RecentSet<K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: Eq + Hash + Clone + Serialize, const N: usize> Serialize for RecentSet<K, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, K: Eq + Hash + Clone + DeserializeOwned, const N: usize> Deserialize<'de>
    for RecentSet<K, N>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let keys = Vec::<K>::deserialize(deserializer)?;
        let mut recent = Self::default();
        for key in keys {
            recent.record(key);
        }
        Ok(recent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_forgets_its_oldest_entry_first() {
        let mut recent = RecentMap::<u32, char, 3>::default();
        for (k, v) in [(1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')] {
            recent.record(k, v);
        }
        assert_eq!(recent.len(), 3);
        assert!(!recent.contains(&1) && !recent.contains(&2));
        let kept: Vec<_> = recent.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(kept, vec![(3, 'c'), (4, 'd'), (5, 'e')]);
    }

    #[test]
    fn a_key_recorded_again_keeps_its_place_and_takes_the_new_value() {
        let mut recent = RecentMap::<u32, char, 3>::default();
        for (k, v) in [(1, 'a'), (2, 'b'), (1, 'z'), (3, 'c'), (4, 'd')] {
            recent.record(k, v);
        }
        let kept: Vec<_> = recent.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(kept, vec![(2, 'b'), (3, 'c'), (4, 'd')]);
    }

    #[test]
    fn a_window_survives_its_json_oldest_first_and_a_longer_list_keeps_its_newest() {
        let mut recent = RecentSet::<u32, 3>::default();
        for k in [7, 8, 9, 10] {
            recent.record(k);
        }
        let json = serde_json::to_string(&recent).unwrap();
        assert_eq!(json, "[8,9,10]");
        assert_eq!(
            serde_json::from_str::<RecentSet<u32, 3>>(&json).unwrap(),
            recent
        );
        let longer: RecentSet<u32, 3> = serde_json::from_str("[1,2,8,9,10]").unwrap();
        assert_eq!(longer, recent);

        let mut map = RecentMap::<String, bool, 2>::default();
        map.record("a".into(), true);
        map.record("b".into(), false);
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"[["a",true],["b",false]]"#);
        assert_eq!(
            serde_json::from_str::<RecentMap<String, bool, 2>>(&json).unwrap(),
            map
        );
    }

    #[test]
    fn windows_with_the_same_keys_in_another_order_differ() {
        let mut one = RecentSet::<u32, 3>::default();
        let mut two = RecentSet::<u32, 3>::default();
        one.record(1);
        one.record(2);
        two.record(2);
        two.record(1);
        assert_ne!(one, two, "the order decides which is forgotten next");
    }
}
