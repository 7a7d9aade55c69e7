//! The audio front end against torchaudio / Hugging Face reference numbers made by
//! `scripts/make_fixtures.py` (`tests/fixtures/fbank.safetensors`, wavs in
//! `tests/fixtures/audio/`): every frame of every fixture within 1e-3.
//!
//! Set `AUDIO_FIXTURES_DIR` to check another directory of the same layout.

use std::path::{Path, PathBuf};

use petl_ast::audio::{
    read_wav, resample, to_16k, AudioLimits, Fbank, FeatureExtractor, FeatureExtractorConfig,
};
use safetensors::{Dtype, SafeTensors};

/// Max abs error allowed on every value (log-mel units for fbank, normalised for inputs).
const TOL: f32 = 1e-3;

fn fixtures() -> PathBuf {
    std::env::var_os("AUDIO_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
}

fn reference_bytes() -> Vec<u8> {
    let path = fixtures().join("fbank.safetensors");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(shape, values)` of an F32 tensor.
fn tensor(st: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = st.tensor(name).unwrap();
    assert_eq!(view.dtype(), Dtype::F32, "{name}");
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (view.shape().to_vec(), values)
}

fn read_fixture_wav(stem: &str) -> Vec<f32> {
    let path = fixtures().join("audio").join(format!("{stem}.wav"));
    let audio = read_wav(&path, &AudioLimits::default()).unwrap();
    assert_eq!(audio.sample_rate, 16000, "{stem}");
    audio.samples
}

/// Max abs difference per row of `cols` values; NaN counts as infinitely wrong.
fn row_errors(got: &[f32], want: &[f32], cols: usize) -> Vec<f32> {
    assert_eq!(got.len(), want.len());
    got.chunks(cols)
        .zip(want.chunks(cols))
        .map(|(g, w)| {
            g.iter().zip(w).fold(0.0f32, |m, (a, b)| {
                let d = (a - b).abs();
                if d.is_nan() {
                    f32::INFINITY
                } else {
                    m.max(d)
                }
            })
        })
        .collect()
}

#[test]
fn fbank_matches_torchaudio_on_every_frame() {
    let bytes = reference_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let fbank = Fbank::default();
    let mut names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| n.starts_with("fbank."))
        .map(String::from)
        .collect();
    names.sort();
    assert!(names.len() >= 3, "too few fbank fixtures: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let stem = &name["fbank.".len()..];
        let (shape, want) = tensor(&st, name);
        let got = fbank.compute(&read_fixture_wav(stem));
        assert_eq!(vec![got.frames, got.num_mel_bins], shape, "{name}: shape");
        let errors = row_errors(&got.data, &want, 128);
        let worst = errors.iter().copied().fold(0.0f32, f32::max);
        let bad = errors.iter().filter(|&&e| e > TOL).count();
        println!("{name}: {} frames, max abs error {worst:.3e}", got.frames);
        if bad > 0 {
            failures.push(format!(
                "{name}: {bad} frames over {TOL}, worst {worst:.3e}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn input_values_match_the_hf_extractor() {
    let bytes = reference_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| n.starts_with("input_values."))
        .map(String::from)
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no input_values fixtures");
    let mut failures = Vec::new();
    for name in &names {
        // input_values.<stem>.L<max_length>
        let rest = &name["input_values.".len()..];
        let (stem, len) = rest.rsplit_once(".L").unwrap_or_else(|| panic!("{name}"));
        let max_length: usize = len.parse().unwrap();
        let extractor = FeatureExtractor::new(FeatureExtractorConfig {
            max_length,
            ..Default::default()
        })
        .unwrap();
        let (shape, want) = tensor(&st, name);
        assert_eq!(shape, vec![max_length, 128], "{name}");
        let got = extractor.extract(&read_fixture_wav(stem));
        let errors = row_errors(&got, &want, 128);
        let worst = errors.iter().copied().fold(0.0f32, f32::max);
        println!("{name}: max abs error {worst:.3e}");
        if errors.iter().any(|&e| e > TOL) {
            failures.push(format!("{name}: worst {worst:.3e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The FSDD recordings (8 kHz), if this checkout sits next to the shared data.
fn fsdd_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fsdd/recordings");
    assert!(
        dir.is_dir(),
        "{} is absent: this test needs the FSDD recordings beside the checkout",
        dir.display()
    );
    dir
}

#[test]
fn fsdd_clips_run_end_to_end() {
    let dir = fsdd_dir();
    let extractor = FeatureExtractor::default();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty());
    for path in entries.iter().step_by(entries.len().div_ceil(50)) {
        let audio = read_wav(path, &AudioLimits::default()).unwrap();
        assert_eq!(audio.sample_rate, 8000, "{}", path.display());
        let n = audio.samples.len();
        let input = extractor.extract_audio(&audio).unwrap();
        assert_eq!(input.len(), 1024 * 128);
        assert!(input.iter().all(|v| v.is_finite()), "{}", path.display());
        assert_eq!(extractor.valid_frames(2 * n), (2 * n - 400) / 160 + 1);
    }
}

/// Our resampler vs the torchaudio-resampled fixture clips: not bit-equal (different
/// filters), but the features must be close where there is signal.
#[test]
fn fsdd_resampling_is_close_to_torchaudio_s() {
    let dir = fsdd_dir();
    let bytes = reference_bytes();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let fbank = Fbank::default();
    for stem in ["0_george_0", "5_jackson_3", "9_theo_1"] {
        let path = dir.join(format!("{stem}.wav"));
        if !path.is_file() || st.tensor(&format!("fbank.{stem}")).is_err() {
            continue;
        }
        let audio = read_wav(&path, &AudioLimits::default()).unwrap();
        let ours = to_16k(audio.clone()).unwrap();
        let theirs = read_fixture_wav(stem);
        assert_eq!(ours.len(), theirs.len(), "{stem}");
        let wave_err = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let peak = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // Mel bins of the 0-3.5 kHz band (bins 0..=80) where the reference has energy.
        let (_, want) = tensor(&st, &format!("fbank.{stem}"));
        let got = fbank.compute(&ours);
        let mut band_err = 0.0f32;
        for (g, w) in got.data.chunks(128).zip(want.chunks(128)) {
            for m in 0..=80 {
                if w[m] > -8.0 {
                    band_err = band_err.max((g[m] - w[m]).abs());
                }
            }
        }
        println!(
            "{stem}: waveform max diff {wave_err:.2e} (peak {peak:.3}); \
             fbank 0-3.5 kHz max diff {band_err:.3e}"
        );
        // The filters differ most at the 4 kHz band edge (torchaudio: 6 zero crossings,
        // rolloff 0.99; ours: >= 1024 taps, sharp), where FSDD clips have some energy; an ideal
        // (FFT) band-limited interpolation differs from torchaudio's by as much as ours.
        assert!(wave_err < 0.15 * peak, "{stem}: {wave_err}");
        assert!(band_err < 0.05, "{stem}: {band_err}");
        // Resampling the 16 kHz clip to itself is the identity.
        assert_eq!(resample(&theirs, 16000, 16000).unwrap(), theirs);
    }
}
