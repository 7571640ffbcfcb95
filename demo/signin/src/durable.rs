//! Whether what the database writes still reaches its file: a database file removed or
//! replaced while the service runs would take every later write with it at the next start
//! (SQLite goes on writing to the file it opened, which no path names any more). The file
//! opened is compared with the one its path names before each write, and a write is refused
//! when they differ: a revocation is stored for good or refused, never acknowledged and lost.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The database file as it was opened.
#[derive(Debug)]
pub struct OpenedFile {
    path: PathBuf,
    /// Held open, so that its link count shows an unlinked file.
    file: File,
    device: u64,
    inode: u64,
}

impl OpenedFile {
    /// The file at `path`, as it is now (just after the database opened it).
    pub fn new(path: &str) -> std::io::Result<OpenedFile> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        Ok(OpenedFile {
            path: PathBuf::from(path),
            file,
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    /// Why writes would be lost, if they would: the file was removed, or its path names
    /// another file now.
    pub fn problem(&self) -> Option<String> {
        let path = self.path.display();
        match self.file.metadata() {
            Ok(held) if held.nlink() == 0 => {
                return Some(format!("{path} was removed while the service ran"))
            }
            Ok(_) => {}
            Err(e) => return Some(format!("{path}: {e}")),
        }
        match std::fs::metadata(&self.path) {
            Ok(now) if now.dev() == self.device && now.ino() == self.inode => None,
            Ok(_) => Some(format!("{path} was replaced while the service ran")),
            Err(e) => Some(format!("{path}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_removed_or_replaced_file_is_noticed() {
        let dir = std::env::temp_dir().join(format!("tollgate-durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db");
        std::fs::write(&path, b"one").unwrap();
        let opened = OpenedFile::new(path.to_str().unwrap()).unwrap();
        assert_eq!(opened.problem(), None);
        std::fs::write(&path, b"written in place").unwrap();
        assert_eq!(opened.problem(), None, "the same file");
        std::fs::remove_file(&path).unwrap();
        assert!(opened.problem().unwrap().contains("removed"));
        std::fs::write(&path, b"another").unwrap();
        assert!(opened.problem().is_some(), "another file by that name");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
