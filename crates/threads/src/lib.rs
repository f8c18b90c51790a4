//! A rates strategy: one OS thread per base (work in progress).
