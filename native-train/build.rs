//! With the `tch` feature: keep LibTorch's CUDA library linked. LibTorch registers its CUDA
//! device when `libtorch_cuda.so` loads, but no symbol of it is referenced directly, so the
//! linker's `--as-needed` would drop it and `--backend cuda` would find no device.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        return;
    };
    let lib = std::path::Path::new(&libtorch).join("lib");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
