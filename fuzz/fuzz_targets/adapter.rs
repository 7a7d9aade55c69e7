//! `cargo fuzz run adapter`: the body is [`petl_ast::fuzz::adapter`], which
//! `tests/fuzz_corpus_replay.rs` also runs on every committed corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| petl_ast::fuzz::adapter(data));
