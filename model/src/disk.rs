//! Disk operations a node may request, and their completions.

/// A file name on a node's simulated disk (flat namespace per node).
pub type FileName = String;

/// An identifier the node chooses for a disk operation; echoed in the reply.
pub type DiskOpId = u64;

/// A disk operation. Writes land in the page cache; only `Fsync` makes a
/// file's contents durable. A crash loses everything written since the last
/// completed fsync of that file (or keeps a torn prefix of it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DiskRequest {
    /// Append bytes at the end of the file (creating it if absent).
    Append {
        /// The file.
        file: FileName,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Write bytes at an offset (extending the file, zero-filling any gap).
    WriteAt {
        /// The file.
        file: FileName,
        /// Byte offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Cut the file to `len` bytes.
    Truncate {
        /// The file.
        file: FileName,
        /// New length in bytes.
        len: u64,
    },
    /// Make every earlier write and truncate of this file durable.
    Fsync {
        /// The file.
        file: FileName,
    },
    /// Read the whole file as the process sees it (page cache included).
    Read {
        /// The file.
        file: FileName,
    },
    /// Remove the file (takes effect at once and durably).
    Delete {
        /// The file.
        file: FileName,
    },
}

impl DiskRequest {
    /// The file this request is about.
    pub fn file(&self) -> &str {
        match self {
            DiskRequest::Append { file, .. }
            | DiskRequest::WriteAt { file, .. }
            | DiskRequest::Truncate { file, .. }
            | DiskRequest::Fsync { file }
            | DiskRequest::Read { file }
            | DiskRequest::Delete { file } => file,
        }
    }
}

/// The successful result of a disk operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DiskReply {
    /// A write, append, truncate or delete is done (in the page cache).
    Done,
    /// An fsync is done: the file's earlier writes are durable.
    Synced,
    /// The contents of a read (empty if the file does not exist).
    Data(Vec<u8>),
}

/// A disk error, as the operating system would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DiskError {
    /// EIO: the operation failed; after a failed fsync the unsynced pages of
    /// the file are gone (as Linux does).
    #[error("EIO: input/output error")]
    Io,
    /// ENOSPC: the disk is full.
    #[error("ENOSPC: no space left on device")]
    NoSpace,
}
