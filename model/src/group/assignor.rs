//! Assignors. (Being written.)
