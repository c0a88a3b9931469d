//! Offsets-log records. (Being written.)
