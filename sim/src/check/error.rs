//! Errors of the checker library.

/// Why a history could not be checked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The input is malformed at a line of the file.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line in the source file.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An operation is well-formed but the model cannot interpret it.
    #[error("line {line}: {message}")]
    BadOperation {
        /// 1-based line of the operation's invocation in the source file.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The input holds no operation (an empty file, or only comments,
    /// blank lines or nemesis events): nothing to judge.
    #[error("no operations: the history is empty (or holds only non-client events), so there is nothing to check")]
    NoOperations,
    /// The history has operations, but none the chosen model judges (e.g.
    /// a register history given to the kafka model).
    #[error("{0}")]
    NothingToCheck(String),
    /// The options are invalid (e.g. an unknown model name).
    #[error("{0}")]
    Usage(String),
}

impl CheckError {
    /// The 1-based source line the error refers to, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            CheckError::Parse { line, .. } | CheckError::BadOperation { line, .. } => Some(*line),
            CheckError::Usage(_) | CheckError::NoOperations | CheckError::NothingToCheck(_) => None,
        }
    }
}
