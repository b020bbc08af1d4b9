//! Loom models of gort's lock-free protocols; see `tests/`. Run with `RUSTFLAGS="--cfg loom" cargo test -p gort-loom-tests --release`.
