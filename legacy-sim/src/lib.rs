//! Simulated legacy servers (work in progress).
