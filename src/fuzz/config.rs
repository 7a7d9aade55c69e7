//! `config`: `config.json` and `preprocessor_config.json` parsing.

use crate::audio::{FeatureExtractor, FeatureExtractorConfig};
use crate::model::AstConfig;

use super::assert_names;

/// Parses `data` as both files. Contract: errors name the file; an accepted `config.json`
/// describes a model whose sizes are computable without overflow, has labels for every class,
/// and survives a write/read round trip; an accepted `preprocessor_config.json` builds an
/// extractor whose features of silence and of a full-scale square wave are finite.
pub fn config(data: &[u8]) {
    // The loaders read files with `read_to_string`: invalid UTF-8 never reaches the parsers.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match AstConfig::from_json(text, "m/config.json") {
        Err(e) => assert_names(&e.to_string(), "m/config.json"),
        Ok(c) => {
            let tokens = c
                .frequency_out_dim()
                .checked_mul(c.time_out_dim(c.max_length))
                .and_then(|n| n.checked_add(2));
            assert!(tokens.is_some(), "token count overflows for {c:?}");
            let _ = c.backbone_weight_values(c.max_length);
            let labels = c.labels().expect("validated labels");
            assert_eq!(labels.len(), c.num_labels());
            c.activation().expect("validated activation");
            let again = AstConfig::from_json(&c.to_json(), "again").expect("round trip parses");
            assert_eq!(again, c, "round trip changed the config");
        }
    }
    match FeatureExtractorConfig::from_json(text, "m/preprocessor_config.json") {
        Err(e) => assert_names(&e.to_string(), "m/preprocessor_config.json"),
        Ok(c) => {
            let fx = FeatureExtractor::new(c).expect("a validated config builds");
            let rate = fx.config().sampling_rate as usize;
            // Half a second at most, and never past the frames the extractor reads.
            let n = (rate / 2).min(fx.samples_needed()).max(1);
            let silence = fx.extract(&vec![0.0; n]);
            let square: Vec<f32> = (0..n)
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let square = fx.extract(&square);
            let (frames, bins) = fx.input_shape();
            for out in [silence, square] {
                assert_eq!(out.len(), frames * bins);
                assert!(out.iter().all(|v| v.is_finite()), "{:?}", fx.config());
            }
        }
    }
}
