//! Nothing here: the scale benchmark is `benches/scale/main.rs`
//! (`cargo bench -p scale-bench --bench scale`).
