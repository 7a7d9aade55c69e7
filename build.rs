//! `cfg(threaded)`: the CPU kernels run on rayon's pool natively, and in wasm builds with the
//! `threads` feature (a pool of Web Workers over shared memory).
fn main() {
    cfg_aliases::cfg_aliases! {
        threaded: { any(not(target_family = "wasm"), feature = "threads") },
    }
}
