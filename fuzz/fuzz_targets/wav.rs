//! `cargo fuzz run wav`: the body is [`petl_ast::fuzz::wav`], which
//! `tests/fuzz_corpus_replay.rs` also runs on every committed corpus file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| petl_ast::fuzz::wav(data));
