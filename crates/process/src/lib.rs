//! A rates strategy: a pool of child worker processes over pipes (work in progress).
