//! One open checkpoint file: positioned reads, and noticing when it changes on disk.
//!
//! Files are read with positioned reads (`pread`) on the open descriptor, never mapped: a file
//! that shrinks under a mapping raises SIGBUS on the next touch of a page past its new end,
//! while a read past the end only comes back short. So a checkpoint rewritten by a training
//! job is an error of the blocks it concerns, never a crash.
//!
//! Each file remembers what it was when opened ([`Identity`]: size, modification time, device
//! and inode). [`OpenFile::read_checked`] compares the descriptor's identity (`fstat`) before
//! and after each read, so bytes from a file that changed in between are never used. A change
//! is sticky: once seen, every later read of that file fails at once with the same
//! [`Change`], so numbers of two versions of a file are never mixed.

use std::fmt;
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use super::CheckpointError;

/// What a file was at one moment: enough to notice that it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Size in bytes.
    pub len: u64,
    /// Last modification time (`None` where the platform has none).
    pub modified: Option<SystemTime>,
    /// Device and inode (zero where the platform has none): a file replaced by a rename
    /// has a new inode.
    pub inode: (u64, u64),
}

impl Identity {
    /// The identity recorded in `md`.
    pub fn of(md: &Metadata) -> Self {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            (md.dev(), md.ino())
        };
        #[cfg(not(unix))]
        let inode = (0, 0);
        Self {
            len: md.len(),
            modified: md.modified().ok(),
            inode,
        }
    }
}

/// How a file differs from the one that was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file, as opened.
    pub path: PathBuf,
    /// What it was when opened.
    pub before: Identity,
    /// What it is now; `None` when it is gone from its path.
    pub after: Option<Identity>,
}

impl Change {
    /// `Some` when `after` differs from `before`.
    fn between(path: &Path, before: Identity, after: Option<Identity>) -> Option<Self> {
        (after != Some(before)).then(|| Self {
            path: path.to_path_buf(),
            before,
            after,
        })
    }

    /// What changed, in a few words: "size 1.40 GiB → 1.00 MiB", "replaced by a new file".
    pub fn what(&self) -> String {
        use crate::units::bytes;
        match self.after {
            None => "it is gone from its path".into(),
            Some(a) if a.len != self.before.len => {
                format!("size {} → {}", bytes(self.before.len), bytes(a.len))
            }
            Some(a) if a.inode != self.before.inode => "replaced by a new file".into(),
            Some(_) => "rewritten with the same size".into(),
        }
    }

    /// The file's name without its directory, for tight spaces.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .unwrap_or(self.path.as_os_str())
            .to_string_lossy()
            .into_owned()
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} changed on disk since it was opened ({}); reopen it",
            self.path.display(),
            self.what()
        )
    }
}

/// An open checkpoint file, read by position, with the identity it had when opened.
#[derive(Debug)]
pub(crate) struct OpenFile {
    path: PathBuf,
    file: File,
    opened: Identity,
    /// xxh3 of the header bytes read when the file was opened (0 until set).
    header_hash: u64,
    /// The first change seen; once set, every read fails with it.
    changed: OnceLock<Change>,
}

impl OpenFile {
    /// Opens `path` for reading and records its identity.
    pub(crate) fn open(path: &Path) -> Result<Self, CheckpointError> {
        let io_err = |action, source| CheckpointError::Io {
            path: path.to_path_buf(),
            action,
            source,
        };
        let file = File::open(path).map_err(|e| io_err("open", e))?;
        let md = file.metadata().map_err(|e| io_err("read", e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            opened: Identity::of(&md),
            header_hash: 0,
            changed: OnceLock::new(),
        })
    }

    /// Records the hash of the header bytes the format's parser read.
    pub(crate) fn set_header_hash(&mut self, hash: u64) {
        self.header_hash = hash;
    }

    /// The hash of the header bytes, as recorded when opened.
    pub(crate) fn header_hash(&self) -> u64 {
        self.header_hash
    }

    /// What the file was when opened.
    pub(crate) fn identity(&self) -> Identity {
        self.opened
    }

    /// Size in bytes when opened.
    pub(crate) fn len(&self) -> u64 {
        self.opened.len
    }

    /// Reads `buf.len()` bytes at `offset`, without any identity check (the header, read
    /// once at open time and validated as a whole).
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CheckpointError> {
        read_exact_at(&self.file, buf, offset).map_err(|source| {
            self.fail_if_changed().unwrap_or(CheckpointError::Io {
                path: self.path.clone(),
                action: "read",
                source,
            })
        })
    }

    /// Runs `read` (which reads this file through the given reader) between two identity
    /// checks of the open descriptor; fails with [`CheckpointError::Changed`] when the file
    /// changed before or during the read, and remembers the change.
    pub(crate) fn read_checked<R>(
        &self,
        read: impl FnOnce(&mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>) -> io::Result<R>,
    ) -> Result<R, CheckpointError> {
        if let Some(e) = self.fail_if_changed() {
            return Err(e);
        }
        let mut reader = |offset: u64, buf: &mut [u8]| read_exact_at(&self.file, buf, offset);
        let result = read(&mut reader);
        // Checked after the read too: bytes read while the file was being rewritten in place
        // (same size, new mtime) are discarded.
        if let Some(e) = self.fail_if_changed() {
            return Err(e);
        }
        result.map_err(|source| CheckpointError::Io {
            path: self.path.clone(),
            action: "read",
            source,
        })
    }

    /// The change seen so far, or now on the open descriptor (`fstat`), as an error.
    fn fail_if_changed(&self) -> Option<CheckpointError> {
        if let Some(c) = self.changed.get() {
            return Some(CheckpointError::Changed(c.clone()));
        }
        let now = self.file.metadata().ok().map(|md| Identity::of(&md));
        let change = Change::between(&self.path, self.opened, now)?;
        Some(CheckpointError::Changed(
            self.changed.get_or_init(|| change).clone(),
        ))
    }

    /// How the file at this path differs from the one opened, if it does: the open
    /// descriptor (rewritten in place) and the path (replaced, deleted) are both looked at.
    /// Does not make reads fail: a replaced file's old contents stay readable and whole.
    pub(crate) fn change(&self) -> Option<Change> {
        if let Some(c) = self.changed.get() {
            return Some(c.clone());
        }
        let fd = self.file.metadata().ok().map(|md| Identity::of(&md));
        if let Some(c) = Change::between(&self.path, self.opened, fd) {
            return Some(c);
        }
        let at_path = std::fs::metadata(&self.path)
            .ok()
            .map(|md| Identity::of(&md));
        Change::between(&self.path, self.opened, at_path)
    }
}

/// `read_exact_at`: a short read (the file shrank) is `UnexpectedEof`.
#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// `read_exact_at` from `seek_read`: a short read (the file shrank) is `UnexpectedEof`.
#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn shrinking_file_is_a_sticky_change_not_a_fault() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let f = OpenFile::open(&path).unwrap();
        let mut buf = [0u8; 16];
        let n = f
            .read_checked(|read| read(4000, &mut buf).map(|()| buf.len()))
            .unwrap();
        assert_eq!((n, buf[0]), (16, 7));
        assert!(f.change().is_none());

        std::fs::File::create(&path).unwrap(); // truncates in place, as trainers do
        let err = f.read_checked(|read| read(4000, &mut buf)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("w.bin changed on disk"), "{text}");
        assert!(text.contains("(size 4.00 KiB → 0 B); reopen it"), "{text}");

        // Grown back to the old size: still changed (sticky), same message.
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        w.write_all(&[9u8; 4096]).unwrap();
        let again = f.read_checked(|read| read(0, &mut buf)).unwrap_err();
        assert_eq!(again.to_string(), text);
        assert_eq!(f.change().unwrap().to_string(), text);
    }

    #[test]
    fn replaced_file_is_noticed_but_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        std::fs::write(&path, [1u8; 64]).unwrap();
        let f = OpenFile::open(&path).unwrap();
        let other = dir.path().join("new.bin");
        std::fs::write(&other, [2u8; 64]).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let c = f.change().unwrap();
        assert_eq!(c.what(), "replaced by a new file");
        assert_eq!(c.file_name(), "w.bin");
        // The descriptor still reads the version that was opened, whole.
        let mut buf = [0u8; 64];
        f.read_checked(|read| read(0, &mut buf)).unwrap();
        assert_eq!(buf, [1u8; 64]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(f.change().unwrap().what(), "it is gone from its path");
    }
}
