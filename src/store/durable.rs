//! What makes sled's files durable after its flush: sled 0.34 alone does not (see
//! [`Durability::sync`]). Used by `Store::flush` right after sled's own flush.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The store's sled files and which of its blob files are known durable.
#[derive(Debug)]
pub struct Durability {
    /// sled's directory (`<data>/db`).
    db_dir: PathBuf,
    /// sled's log file (`<data>/db/db`).
    log: File,
    /// What the last sync saw: the blob files fsynced (all of them), and the names in sled's
    /// directory (a new or renamed snapshot, the blobs directory).
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    blobs: BTreeSet<OsString>,
    entries: BTreeSet<OsString>,
}

impl Durability {
    /// For the sled database in `db_dir` (already open: its log file exists).
    pub fn open(db_dir: &Path) -> io::Result<Durability> {
        Ok(Durability {
            log: File::open(db_dir.join("db"))?,
            db_dir: db_dir.to_path_buf(),
            seen: Mutex::new(Seen::default()),
        })
    }

    /// Makes what sled's flush wrote durable, after that flush returned:
    ///
    /// * sled writes a value or tree node larger than a quarter of its 512 KiB segment (a leaf
    ///   holds up to 16 entries: 16 call records with their notifications pass it) to a file
    ///   of its own in `blobs/`, with no fsync of the file or its directory, and puts only a
    ///   pointer in the log. After a power cut such a file is missing or empty: sled drops the
    ///   write whose blob is missing ("dangling") or fails to open. Every blob file not yet
    ///   fsynced is fsynced here, then the directory.
    /// * sled makes its log writes durable with `sync_file_range`, which writes the pages but
    ///   not the file's metadata (a write that extended the log is in no inode until ext4
    ///   commits its journal, up to 5 s later): the log file is fsynced.
    /// * sled renames a finished snapshot into place without an fsync of its directory: the
    ///   directory is fsynced when its names changed.
    pub fn sync(&self) -> io::Result<()> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let blobs_dir = self.db_dir.join("blobs");
        let mut blobs = BTreeSet::new();
        let mut new_blob = false;
        match std::fs::read_dir(&blobs_dir) {
            Ok(entries) => {
                for entry in entries {
                    let name = entry?.file_name();
                    if !seen.blobs.contains(&name) {
                        sync_file(&blobs_dir.join(&name))?;
                        new_blob = true;
                    }
                    blobs.insert(name);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Also when blobs were only removed: their removal is then durable too.
        if new_blob || blobs.len() != seen.blobs.len() {
            File::open(&blobs_dir)?.sync_all()?;
        }
        seen.blobs = blobs;
        self.log.sync_all()?;
        let entries = std::fs::read_dir(&self.db_dir)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<io::Result<BTreeSet<_>>>()?;
        if entries != seen.entries {
            File::open(&self.db_dir)?.sync_all()?;
            seen.entries = entries;
        }
        Ok(())
    }
}

/// fsyncs one file; one sled removed meanwhile (garbage collection) needs none.
fn sync_file(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_values_live_in_blob_files_which_a_sync_makes_durable() {
        let dir = tempfile::tempdir().expect("dir");
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .expect("sled");
        let durability = Durability::open(&dir.path().join("db")).expect("durability");
        // A value over a quarter of sled's segment goes to a file of its own.
        db.insert("big", vec![7u8; 200 * 1024]).expect("insert");
        db.flush().expect("flush");
        let blobs: Vec<_> = std::fs::read_dir(dir.path().join("db").join("blobs"))
            .expect("blobs dir")
            .collect();
        assert_eq!(blobs.len(), 1, "sled keeps the big value in a blob file");
        durability.sync().expect("sync");
        assert_eq!(
            durability.seen.lock().expect("lock").blobs.len(),
            1,
            "the blob file was fsynced"
        );
        durability.sync().expect("a second sync with nothing new");
    }
}
