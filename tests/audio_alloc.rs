//! A WAV header that claims gigabytes must be refused without allocating for them.
//!
//! This test binary installs a counting allocator and holds a single test, so the largest
//! allocation it records is the decoder's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use petl_ast::audio::{decode_wav, read_wav, AudioError, AudioLimits};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// 44-byte header of 32-bit float stereo at 8 kHz declaring `data_len` bytes, plus `tail`.
fn header(data_len: u32, tail: usize) -> Vec<u8> {
    let mut v = b"RIFF\xFF\xFF\xFF\xFFWAVEfmt \x10\x00\x00\x00\x03\x00\x02\x00".to_vec();
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&(8000u32 * 8).to_le_bytes());
    v.extend_from_slice(&8u16.to_le_bytes());
    v.extend_from_slice(&32u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend(std::iter::repeat_n(0u8, tail));
    v
}

#[test]
fn gigabyte_claims_allocate_nothing_big() {
    const LIMIT: usize = 1 << 20; // 1 MiB
                                  // 0xFFFFFFF8 bytes = 536870911 stereo frames = 18.6 hours at 8 kHz.
    let bytes = header(0xFFFF_FFF8, 4096);
    let path = std::env::temp_dir().join(format!("petl-ast-alloc-{}.wav", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();

    LARGEST.store(0, Ordering::SeqCst);
    let e = decode_wav(&bytes, "claim.wav", &AudioLimits::default()).unwrap_err();
    assert!(matches!(e, AudioError::TooLong { .. }), "{e}");
    let e = decode_wav(&bytes, "claim.wav", &AudioLimits { max_seconds: 1e12 }).unwrap_err();
    assert!(
        matches!(
            e,
            AudioError::Truncated {
                declared: 536_870_911,
                present: 512,
                ..
            }
        ),
        "{e}"
    );
    let e = read_wav(&path, &AudioLimits::default()).unwrap_err();
    assert!(matches!(e, AudioError::TooLong { .. }), "{e}");
    let e = read_wav(&path, &AudioLimits { max_seconds: 1e12 }).unwrap_err();
    assert!(matches!(e, AudioError::Truncated { .. }), "{e}");
    let largest = LARGEST.load(Ordering::SeqCst);
    let _ = std::fs::remove_file(&path);
    assert!(largest < LIMIT, "largest allocation was {largest} bytes");
    // Sanity check of the instrument: a real decode does allocate its samples.
    let ok = header(8 * 100_000, 8 * 100_000);
    let audio = decode_wav(&ok, "ok.wav", &AudioLimits::default()).unwrap();
    assert_eq!(audio.samples.len(), 100_000);
    assert!(LARGEST.load(Ordering::SeqCst) >= 400_000);
}
