//! A bounded record of things seen recently (transaction ids, event ids, delivered
//! messages): a key -> value tree plus an index by time, pruned by age and count.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Result;

pub(super) struct Recent {
    /// key -> `at_ms (8 bytes BE)` ++ value
    pub(super) by_key: sled::Tree,
    /// `at_ms (8 bytes BE)` ++ key -> ()
    pub(super) by_age: sled::Tree,
    len: AtomicUsize,
}

impl Recent {
    pub(super) fn open(db: &sled::Db, name: &str) -> Result<Recent> {
        let by_key = db.open_tree(name)?;
        let by_age = db.open_tree(format!("{name}_by_age"))?;
        let len = AtomicUsize::new(by_age.len());
        Ok(Recent {
            by_key,
            by_age,
            len,
        })
    }

    /// The time and value recorded for `key`.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>> {
        Ok(self.by_key.get(key)?.and_then(|v| split(&v)))
    }

    pub(super) fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.by_key.contains_key(key)?)
    }

    /// Records `key` (again) with `value` at `at_ms`.
    pub(super) fn insert(&self, key: &[u8], value: &[u8], at_ms: u64) -> Result<()> {
        self.by_key.insert(key, record(value, at_ms))?;
        if self.by_age.insert(age_key(key, at_ms), &[])?.is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Records `key` unless it is there; true if this call recorded it.
    pub(super) fn insert_new(&self, key: &[u8], value: &[u8], at_ms: u64) -> Result<bool> {
        let swapped =
            self.by_key
                .compare_and_swap(key, None as Option<&[u8]>, Some(record(value, at_ms)))?;
        if swapped.is_err() {
            return Ok(false);
        }
        if self.by_age.insert(age_key(key, at_ms), &[])?.is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Forgets records older than `oldest_ms`, and the oldest ones beyond `max_count`.
    /// Returns how many were forgotten.
    pub(super) fn prune(&self, oldest_ms: u64, max_count: usize) -> Result<usize> {
        let mut removed = 0;
        for entry in self.by_age.iter() {
            let (age, _) = entry?;
            let at = match age.get(..8) {
                Some(b) => u64::from_be_bytes(b.try_into().expect("8 bytes")),
                None => 0,
            };
            if at >= oldest_ms && self.len() <= max_count {
                break;
            }
            let key = age.get(8..).unwrap_or_default();
            // A key recorded again later has a newer age entry: keep its record.
            if self
                .by_key
                .get(key)?
                .and_then(|v| split(&v))
                .is_some_and(|(t, _)| t == at)
            {
                self.by_key.remove(key)?;
            }
            if self.by_age.remove(&age)?.is_some() {
                self.len.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn record(value: &[u8], at_ms: u64) -> Vec<u8> {
    let mut record = at_ms.to_be_bytes().to_vec();
    record.extend_from_slice(value);
    record
}

fn age_key(key: &[u8], at_ms: u64) -> Vec<u8> {
    let mut age = at_ms.to_be_bytes().to_vec();
    age.extend_from_slice(key);
    age
}

fn split(record: &[u8]) -> Option<(u64, Vec<u8>)> {
    let at = u64::from_be_bytes(record.get(..8)?.try_into().ok()?);
    Some((at, record[8..].to_vec()))
}
