//! A rates strategy: a dedicated rayon thread pool (work in progress).
