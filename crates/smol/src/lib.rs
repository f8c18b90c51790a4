//! A rates strategy: smol tasks on an async-executor (work in progress).
