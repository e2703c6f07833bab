//! Holds the scale benchmark (`benches/scale`): `cargo bench -p scale-bench --bench scale`.
