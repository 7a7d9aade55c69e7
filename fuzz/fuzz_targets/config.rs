//! `cargo fuzz run config`: the body is [`petl_ast::fuzz::config`], which
//! `tests/fuzz_corpus_replay.rs` also runs on every committed corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| petl_ast::fuzz::config(data));
