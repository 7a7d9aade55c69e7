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
            let (before, after) = (to_value(&c), to_value(&again));
            assert!(
                same(&before, &after),
                "round trip changed the config:\n{before}\n{after}"
            );
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

fn to_value(c: &AstConfig) -> serde_json::Value {
    serde_json::to_value(c).expect("config serialises")
}

/// Equal JSON, except that a float may move by one unit in the last place: serde_json (without
/// its `float_roundtrip` feature) parses decimals with an exponent beyond ±22 (e.g. a
/// `layer_norm_eps` of `1e-24`) up to 1 ULP off, so such a value need not survive a write/read
/// cycle bit for bit (found by this target; see docs/robustness.md).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 2.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
