//! The `files` tree: the bytes of files legacy contacts sent, from the moment they
//! arrive until a front no longer needs them. The outbox entry that shows a file names
//! it by id (`OutboxItem::File`); the bytes stay while it waits, however long. Once
//! shown, a file is dropped, or kept until a deadline when the front serves it itself
//! (XMPP: a link to the bridge). The value is the deadline (milliseconds since the
//! epoch, big-endian; 0 while queued) and the bytes, not JSON: a file is binary.

use super::{Result, Store};

impl Store {
    /// Keeps a received file; its id for the outbox entry.
    pub fn put_file(&self, data: &[u8]) -> Result<u64> {
        let id = self.next_id()?;
        let mut value = Vec::with_capacity(8 + data.len());
        value.extend_from_slice(&0u64.to_be_bytes());
        value.extend_from_slice(data);
        self.files.insert(id.to_be_bytes(), value)?;
        Ok(id)
    }

    /// A stored file's bytes, if it is still kept.
    pub fn file(&self, id: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .files
            .get(id.to_be_bytes())?
            .filter(|v| v.len() >= 8)
            .map(|v| v[8..].to_vec()))
    }

    /// The file's entry is shown: keep its bytes until `until_ms` (a front serves them
    /// until then), or drop them now (`None`).
    pub fn file_shown(&self, id: u64, until_ms: Option<u64>) -> Result<()> {
        let key = id.to_be_bytes();
        match until_ms {
            None => {
                self.files.remove(key)?;
            }
            Some(until) => {
                if let Some(mut value) = self.files.get(key)?.map(|v| v.to_vec()) {
                    if value.len() >= 8 {
                        value[..8].copy_from_slice(&until.max(1).to_be_bytes());
                        self.files.insert(key, value)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Drops the files whose deadline passed (those still queued have none); how many.
    pub fn drop_expired_files(&self, now_ms: u64) -> Result<usize> {
        let mut dropped = 0;
        for item in self.files.iter() {
            let (key, value) = item?;
            let until = value
                .get(..8)
                .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or_default()));
            if until != 0 && until <= now_ms {
                self.files.remove(key)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_kept_while_queued_and_until_its_deadline_once_shown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let a = store.put_file(b"first").unwrap();
        let b = store.put_file(&vec![7u8; 300_000]).unwrap();
        let c = store.put_file(b"third").unwrap();
        assert_ne!(a, b);
        // Queued files never expire, however old.
        assert_eq!(store.drop_expired_files(u64::MAX).unwrap(), 0);
        store.file_shown(a, None).unwrap();
        store.file_shown(b, Some(1_000)).unwrap();
        assert_eq!(store.file(a).unwrap(), None);
        assert_eq!(store.file(b).unwrap().unwrap().len(), 300_000);
        assert_eq!(store.drop_expired_files(999).unwrap(), 0);
        assert_eq!(store.drop_expired_files(1_000).unwrap(), 1);
        assert_eq!(store.file(b).unwrap(), None);
        assert_eq!(store.file(c).unwrap().as_deref(), Some(&b"third"[..]));
    }
}
