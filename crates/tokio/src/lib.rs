//! A rates strategy: tokio tasks, and blocking code through spawn_blocking (work in progress).
