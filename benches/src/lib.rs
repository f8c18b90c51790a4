//! Criterion benchmarks (see benches/strategies.rs).
