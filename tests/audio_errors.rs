//! Bad audio input: every case is an error of the right kind that names the input, never a
//! panic.

use std::path::PathBuf;

use petl_ast::audio::{decode_wav, read_wav, AudioError, AudioLimits};

/// A canonical 44-byte WAV header (`fmt ` of 16 bytes) followed by `data`.
fn wav(
    tag: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
    data_len: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36u32.wrapping_add(data_len)).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// `WAVE_FORMAT_EXTENSIBLE` header with `valid_bits` significant bits in `bits` containers.
fn wav_extensible(sub_format: u16, bits: u16, valid_bits: u16, data: &[u8]) -> Vec<u8> {
    let block_align = bits / 8;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(60 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&40u32.to_le_bytes());
    v.extend_from_slice(&0xFFFEu16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&(16000 * u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(&22u16.to_le_bytes());
    v.extend_from_slice(&valid_bits.to_le_bytes());
    v.extend_from_slice(&4u32.to_le_bytes()); // channel mask
                                              // GUID {0000xxxx-0000-0010-8000-00aa00389b71}
    v.extend_from_slice(&u32::from(sub_format).to_le_bytes());
    v.extend_from_slice(&[
        0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn decode(bytes: &[u8], name: &str) -> AudioError {
    let e = decode_wav(bytes, name, &AudioLimits::default()).expect_err("must be refused");
    assert!(
        e.to_string().contains(name),
        "message does not name `{name}`: {e}"
    );
    e
}

/// A unique file in the temp dir holding `bytes`; removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let dir = std::env::temp_dir().join(format!("petl-ast-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Deterministic pseudo-random bytes.
fn noise_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

#[test]
fn empty_input() {
    assert!(matches!(decode(&[], "<upload>"), AudioError::Empty { .. }));
    let f = TempFile::new("empty.wav", &[]);
    let e = read_wav(&f.0, &AudioLimits::default()).unwrap_err();
    assert!(matches!(e, AudioError::Empty { .. }), "{e}");
    assert!(e.to_string().contains("empty.wav"), "{e}");
}

#[test]
fn random_bytes() {
    let e = decode(&noise_bytes(1000, 1), "noise.bin");
    assert!(matches!(e, AudioError::NotWav { .. }), "{e}");
    assert!(e.to_string().contains("first bytes are"), "{e}");
    let f = TempFile::new("random.wav", &noise_bytes(5000, 2));
    let e = read_wav(&f.0, &AudioLimits::default()).unwrap_err();
    assert!(matches!(e, AudioError::NotWav { .. }), "{e}");
    assert!(e.to_string().contains("random.wav"), "{e}");
    // Random bytes behind a valid RIFF/WAVE prefix, and random headers: errors, no panics.
    for seed in 0..300 {
        let mut b = b"RIFF\x00\x01\x00\x00WAVE".to_vec();
        b.extend(noise_bytes(200 + seed as usize, seed));
        if let Err(e) = decode_wav(&b, "fuzz.wav", &AudioLimits::default()) {
            assert_eq!(e.origin(), Some("fuzz.wav"));
        }
        let mut h = wav(1, 1, 16000, 2, 16, 8, &[0; 8]);
        for (i, byte) in noise_bytes(6, seed).into_iter().enumerate() {
            let at = (seed as usize * 7 + i * 13) % h.len();
            h[at] = byte;
        }
        if let Err(e) = decode_wav(&h, "fuzz.wav", &AudioLimits::default()) {
            assert_eq!(e.origin(), Some("fuzz.wav"));
        }
    }
}

#[test]
fn other_containers_are_named() {
    let e = decode(
        b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        "song.mp3",
    );
    assert!(e.to_string().contains("MP3"), "{e}");
    let e = decode(b"fLaC\x00\x00\x00\x22\x00\x00\x00\x00", "a.flac");
    assert!(e.to_string().contains("FLAC"), "{e}");
}

#[test]
fn header_claiming_4_gib_is_refused_before_allocating() {
    // The largest data chunk a WAV header can declare (u32), 16-bit mono at 16 kHz:
    // 2^31 - 1 samples = 37 hours, with no data behind it.
    let bytes = wav(1, 1, 16000, 2, 16, 0xFFFF_FFFE, &[0; 64]);
    match decode(&bytes, "huge.wav") {
        AudioError::TooLong { seconds, limit, .. } => {
            assert!((seconds - 134217.7279375).abs() < 1e-6, "{seconds}");
            assert_eq!(limit, 1200.0);
        }
        e => panic!("{e}"),
    }
    // With the limit out of the way it is a truncated file.
    let unlimited = AudioLimits { max_seconds: 1e9 };
    match decode_wav(&bytes, "huge.wav", &unlimited).unwrap_err() {
        AudioError::Truncated {
            declared, present, ..
        } => {
            assert_eq!((declared, present), (0x7FFF_FFFF, 32));
        }
        e => panic!("{e}"),
    }
    // Same through a file.
    let f = TempFile::new("huge.wav", &bytes);
    let e = read_wav(&f.0, &AudioLimits::default()).unwrap_err();
    assert!(matches!(e, AudioError::TooLong { .. }), "{e}");
    assert!(
        e.to_string().contains("huge.wav") && e.to_string().contains("--max-seconds"),
        "{e}"
    );
}

#[test]
fn truncated_data_chunk() {
    // Header: 48000 samples (3 s); present: 1200.
    let bytes = wav(1, 1, 16000, 2, 16, 96000, &[0x11; 2400]);
    let e = decode(&bytes, "x.wav");
    assert!(
        matches!(
            e,
            AudioError::Truncated {
                declared: 48000,
                present: 1200,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("header says 48000 samples, only 1200 present"),
        "{e}"
    );
    let f = TempFile::new("cut.wav", &bytes);
    let e = read_wav(&f.0, &AudioLimits::default()).unwrap_err();
    assert!(matches!(e, AudioError::Truncated { .. }), "{e}");
    assert!(e.to_string().contains("cut.wav"), "{e}");
    // Stereo 24-bit: counts are frames.
    let bytes = wav(1, 2, 16000, 6, 24, 6000, &[0; 600]);
    assert!(matches!(
        decode(&bytes, "s.wav"),
        AudioError::Truncated {
            declared: 1000,
            present: 100,
            ..
        }
    ));
    // Cut inside the header: malformed.
    let bytes = wav(1, 1, 16000, 2, 16, 4, &[0; 4]);
    assert!(matches!(
        decode(&bytes[..30], "h.wav"),
        AudioError::Malformed { .. }
    ));
}

#[test]
fn unsupported_sample_formats() {
    let e = decode(&wav(1, 1, 16000, 2, 12, 4, &[0; 4]), "twelve.wav");
    assert!(matches!(e, AudioError::UnsupportedFormat { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("unsupported sample format: 12-bit integer PCM"),
        "{e}"
    );
    // 12 significant bits in 16-bit containers (WAVE_FORMAT_EXTENSIBLE).
    let e = decode(&wav_extensible(1, 16, 12, &[0; 4]), "ext12.wav");
    assert!(e.to_string().contains("12-bit integer PCM"), "{e}");
    // 64-bit float, plain and extensible.
    let e = decode(&wav(3, 1, 16000, 8, 64, 8, &[0; 8]), "double.wav");
    assert!(e.to_string().contains("64-bit float"), "{e}");
    let e = decode(&wav_extensible(3, 64, 64, &[0; 8]), "double-ext.wav");
    assert!(e.to_string().contains("64-bit float"), "{e}");
    // Compressed payloads.
    let e = decode(&wav(0x55, 1, 16000, 1, 0, 4, &[0; 4]), "mp3-in-wav.wav");
    assert!(e.to_string().contains("MPEG layer 3"), "{e}");
    let e = decode(&wav(2, 1, 16000, 256, 4, 256, &[0; 256]), "adpcm.wav");
    assert!(matches!(e, AudioError::UnsupportedFormat { .. }), "{e}");
    // ...while the supported extensible layouts decode.
    let ok = wav_extensible(1, 32, 24, &[0, 0, 0x40, 0]);
    let a = decode_wav(&ok, "ok.wav", &AudioLimits::default()).unwrap();
    assert_eq!(a.samples, vec![0.5]);
    let ok = wav_extensible(3, 32, 32, &0.25f32.to_le_bytes());
    assert_eq!(
        decode_wav(&ok, "ok.wav", &AudioLimits::default())
            .unwrap()
            .samples,
        vec![0.25]
    );
}

#[test]
fn zero_channels_and_zero_rate() {
    let e = decode(&wav(1, 0, 16000, 2, 16, 4, &[0; 4]), "mute.wav");
    assert!(matches!(e, AudioError::ZeroChannels { .. }), "{e}");
    assert!(e.to_string().contains("0 channels"), "{e}");
    let e = decode(&wav(1, 1, 0, 2, 16, 4, &[0; 4]), "rate.wav");
    assert!(matches!(e, AudioError::ZeroSampleRate { .. }), "{e}");
    assert!(e.to_string().contains("sample rate of 0 Hz"), "{e}");
}

#[test]
fn missing_file() {
    let e = read_wav("/definitely/not/here.wav".as_ref(), &AudioLimits::default()).unwrap_err();
    assert!(matches!(e, AudioError::Io { .. }), "{e}");
    assert!(e.to_string().contains("/definitely/not/here.wav"), "{e}");
}

#[test]
fn nan_in_a_float_file_is_refused_with_its_position() {
    let mut samples = vec![0.25f32; 3200];
    samples[1600] = f32::NAN;
    let data: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = wav(3, 1, 16000, 4, 32, data.len() as u32, &data);
    let file = TempFile::new("nan.wav", &bytes);
    let e = read_wav(&file.0, &AudioLimits::default()).unwrap_err();
    assert!(
        matches!(e, AudioError::NonFinite { index: 1600, .. }),
        "{e}"
    );
    let message = e.to_string();
    assert!(
        message.contains("nan.wav") && message.contains("sample 1600 (at 0.100 s) is NaN"),
        "{message}"
    );
}
