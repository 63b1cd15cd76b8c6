//! Compile-fail and compile-pass tests of `#[acidic_job]` and `steps!`; see `tests/ui.rs`.
