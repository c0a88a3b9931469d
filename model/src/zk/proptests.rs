//! Property tests of the data tree against a simple reference model.
