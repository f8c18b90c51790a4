//! A rates strategy: async-std tasks (discontinued upstream; kept as a comparison row) (work in progress).
