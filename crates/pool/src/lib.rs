//! A rates strategy: a std-only thread pool with work and result channels (work in progress).
