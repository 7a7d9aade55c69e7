//! Turning clips into model inputs, in parallel on native targets.

use crate::audio::{read_wav, AudioLimits, FeatureExtractor};
use crate::train::Example;

use super::{Clip, DataError};

/// Reads, resamples and featurises every clip (in parallel natively). A file that fails is
/// reported with its path; with `skip_bad` it is left out (and listed in the second result)
/// instead of failing the whole set.
pub fn examples(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    limits: &AudioLimits,
    skip_bad: bool,
) -> Result<(Vec<Example>, Vec<String>), DataError> {
    examples_with(clips, skip_bad, |clip| {
        let audio = read_wav(&clip.path, limits).map_err(|e| e.to_string())?;
        extractor.extract_audio(&audio).map_err(|e| e.to_string())
    })
}

/// Like [`examples`] with any per-clip feature function (e.g. a cache in front of the
/// extractor): runs it on every clip (in parallel natively) and collects the results in clip
/// order, failing on the first error unless `skip_bad`.
pub fn examples_with<F>(
    clips: &[Clip],
    skip_bad: bool,
    features: F,
) -> Result<(Vec<Example>, Vec<String>), DataError>
where
    F: Fn(&Clip) -> Result<Vec<f32>, String> + Sync,
{
    examples_per_clip(clips, skip_bad, |clip| Ok(vec![features(clip)?]))
}

/// [`examples_with`] for a function that makes several inputs of each clip (e.g. the clip at
/// several speeds): each clip's inputs in the function's order, clip after clip, all with the
/// clip's label.
pub fn examples_per_clip<F>(
    clips: &[Clip],
    skip_bad: bool,
    features: F,
) -> Result<(Vec<Example>, Vec<String>), DataError>
where
    F: Fn(&Clip) -> Result<Vec<Vec<f32>>, String> + Sync,
{
    #[cfg(threaded)]
    let results: Vec<Result<Vec<Vec<f32>>, String>> = {
        use rayon::prelude::*;
        clips.par_iter().map(&features).collect()
    };
    #[cfg(not(threaded))]
    let results: Vec<Result<Vec<Vec<f32>>, String>> = clips.iter().map(&features).collect();
    let mut out = Vec::with_capacity(results.len());
    let mut skipped = Vec::new();
    for (clip, result) in clips.iter().zip(results) {
        match result {
            Ok(inputs) => out.extend(inputs.into_iter().map(|features| Example {
                features,
                label: clip.label,
            })),
            Err(message) if skip_bad => skipped.push(message),
            Err(message) => {
                return Err(DataError::Io {
                    path: clip.path.display().to_string(),
                    message: format!("{message} (pass --skip-bad-files to leave such files out)"),
                })
            }
        }
    }
    Ok((out, skipped))
}
