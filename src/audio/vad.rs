//! Finding utterances in a live audio stream: an energy detector with an adaptive noise floor,
//! used by the web page to cut one clip per spoken word out of the microphone stream (and by
//! anything else that listens continuously).
//!
//! The stream is cut into 10 ms frames; a frame is loud when its RMS exceeds both an absolute
//! floor and a multiple of the tracked noise floor. An utterance starts after
//! [`SegmenterConfig::onset_frames`] loud frames and ends after [`SegmenterConfig::hangover_ms`]
//! of quiet; it is returned with [`SegmenterConfig::pre_roll_ms`] of audio before the onset and
//! [`SegmenterConfig::post_roll_ms`] after the last loud frame.

use std::collections::VecDeque;

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmenterConfig {
    /// Sample rate of the stream.
    pub sample_rate: u32,
    /// RMS below which nothing counts as speech (full scale = 1).
    pub min_rms: f32,
    /// A frame is loud when its RMS exceeds this multiple of the noise floor.
    pub snr: f32,
    /// Loud frames in a row that start an utterance.
    pub onset_frames: usize,
    /// Quiet time that ends an utterance.
    pub hangover_ms: u32,
    /// Audio kept before the onset.
    pub pre_roll_ms: u32,
    /// Audio kept after the last loud frame.
    pub post_roll_ms: u32,
    /// Utterances shorter than this (loud part) are dropped as clicks.
    pub min_ms: u32,
    /// Utterances are cut at this length.
    pub max_ms: u32,
}

impl SegmenterConfig {
    /// Defaults for speech at `sample_rate`.
    pub fn speech(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            min_rms: 0.004,
            snr: 4.0,
            onset_frames: 2,
            hangover_ms: 300,
            pre_roll_ms: 150,
            post_roll_ms: 100,
            min_ms: 120,
            max_ms: 3000,
        }
    }
}

/// An utterance found in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Its samples, with pre- and post-roll.
    pub samples: Vec<f32>,
    /// Index in the stream of its first sample.
    pub start: u64,
}

/// Streaming utterance detector.
#[derive(Debug, Clone)]
pub struct Segmenter {
    config: SegmenterConfig,
    frame_len: usize,
    /// Samples not yet forming a whole frame.
    partial: Vec<f32>,
    /// Recent audio (pre-roll, or the utterance in progress).
    history: VecDeque<f32>,
    /// Stream index of `history[0]`.
    history_start: u64,
    /// Stream index of the next sample pushed.
    position: u64,
    noise_floor: f32,
    loud_run: usize,
    quiet_run: usize,
    /// Stream index where the current utterance's kept audio starts, once started.
    active_from: Option<u64>,
    /// Stream index just past the last loud frame of the current utterance.
    last_loud_end: u64,
    loud_frames: usize,
}

impl Segmenter {
    /// A detector with `config`.
    pub fn new(config: SegmenterConfig) -> Self {
        let frame_len = (config.sample_rate as usize / 100).max(1);
        Self {
            config,
            frame_len,
            partial: Vec::with_capacity(frame_len),
            history: VecDeque::new(),
            history_start: 0,
            position: 0,
            noise_floor: config.min_rms,
            loud_run: 0,
            quiet_run: 0,
            active_from: None,
            last_loud_end: 0,
            loud_frames: 0,
        }
    }

    fn samples(&self, ms: u32) -> u64 {
        self.config.sample_rate as u64 * ms as u64 / 1000
    }

    /// Whether an utterance is in progress.
    pub fn is_active(&self) -> bool {
        self.active_from.is_some()
    }

    /// The current noise-floor estimate (RMS).
    pub fn noise_floor(&self) -> f32 {
        self.noise_floor
    }

    /// Feeds samples; returns the utterances that ended within them. Non-finite samples count
    /// as silence.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Utterance> {
        let mut out = Vec::new();
        for &s in samples {
            let s = if s.is_finite() { s } else { 0.0 };
            self.partial.push(s);
            self.history.push_back(s);
            self.position += 1;
            if self.partial.len() == self.frame_len {
                let energy: f32 = self.partial.iter().map(|x| x * x).sum();
                let rms = (energy / self.frame_len as f32).sqrt();
                self.partial.clear();
                if let Some(u) = self.frame(rms) {
                    out.push(u);
                }
            }
        }
        out
    }

    /// Ends the stream: an utterance in progress is returned.
    pub fn flush(&mut self) -> Option<Utterance> {
        self.active_from.is_some().then(|| self.emit())?
    }

    fn frame(&mut self, rms: f32) -> Option<Utterance> {
        let c = self.config;
        let threshold = (self.noise_floor * c.snr).max(c.min_rms);
        let loud = rms > threshold;
        if !loud {
            // Track the floor: fall fast, rise slowly (about 1 dB per 100 ms).
            self.noise_floor = if rms < self.noise_floor {
                rms.max(1e-6)
            } else {
                (self.noise_floor * 1.012).min(rms.max(1e-6))
            };
        }
        let frame_end = self.position;
        if loud {
            self.loud_run += 1;
            self.quiet_run = 0;
        } else {
            self.loud_run = 0;
            self.quiet_run += 1;
        }
        match self.active_from {
            None => {
                if self.loud_run >= c.onset_frames {
                    let onset = frame_end - (self.loud_run * self.frame_len) as u64;
                    let from = onset.saturating_sub(self.samples(c.pre_roll_ms));
                    self.active_from = Some(from.max(self.history_start));
                    self.last_loud_end = frame_end;
                    self.loud_frames = self.loud_run;
                } else {
                    self.trim_history(frame_end.saturating_sub(self.samples(c.pre_roll_ms)));
                }
                None
            }
            Some(from) => {
                if loud {
                    self.last_loud_end = frame_end;
                    self.loud_frames += 1;
                }
                let hangover =
                    self.quiet_run as u64 * self.frame_len as u64 >= self.samples(c.hangover_ms);
                let too_long = frame_end - from >= self.samples(c.max_ms);
                if hangover || too_long {
                    self.emit()
                } else {
                    None
                }
            }
        }
    }

    fn emit(&mut self) -> Option<Utterance> {
        let from = self.active_from.take()?;
        let c = self.config;
        let end = (self.last_loud_end + self.samples(c.post_roll_ms)).min(self.position);
        let loud_ms = self.loud_frames as u64 * 10;
        let samples: Vec<f32> = self
            .history
            .iter()
            .skip((from - self.history_start) as usize)
            .take((end - from) as usize)
            .copied()
            .collect();
        self.trim_history(self.position.saturating_sub(self.samples(c.pre_roll_ms)));
        self.loud_frames = 0;
        (loud_ms >= c.min_ms as u64).then_some(Utterance {
            samples,
            start: from,
        })
    }

    fn trim_history(&mut self, keep_from: u64) {
        while self.history_start < keep_from && !self.history.is_empty() {
            self.history.pop_front();
            self.history_start += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(16000.0 * seconds) as usize)
            .map(|i| amplitude * (i as f32 * 0.2).sin())
            .collect()
    }

    #[test]
    fn finds_two_words_separated_by_silence() {
        let mut stream = vec![0.0; 8000];
        stream.extend(tone(0.4, 0.3));
        stream.extend(vec![0.0; 8000]);
        stream.extend(tone(0.6, 0.3));
        stream.extend(vec![0.0; 8000]);
        let mut seg = Segmenter::new(SegmenterConfig::speech(16000));
        let found: Vec<Utterance> = stream.chunks(128).flat_map(|c| seg.push(c)).collect();
        assert_eq!(found.len(), 2);
        // 0.4 s of tone + 150 ms pre-roll + 100 ms post-roll, within a frame.
        let first = found[0].samples.len() as f32 / 16000.0;
        assert!((first - 0.65).abs() < 0.03, "{first}");
        assert!((found[0].start as i64 - (8000 - 2400)).abs() <= 160);
        let second = found[1].samples.len() as f32 / 16000.0;
        assert!((second - 0.85).abs() < 0.03, "{second}");
    }

    #[test]
    fn ignores_quiet_noise_and_clicks() {
        let mut seg = Segmenter::new(SegmenterConfig::speech(16000));
        let mut stream: Vec<f32> = (0..32000)
            .map(|i| 0.001 * ((i * 7919) % 13) as f32 / 13.0)
            .collect();
        stream.extend(tone(0.03, 0.5)); // 30 ms click
        stream.extend(vec![0.0; 16000]);
        assert!(seg.push(&stream).is_empty());
        assert!(seg.flush().is_none());
    }

    #[test]
    fn cuts_long_sounds_and_survives_nan() {
        let mut seg = Segmenter::new(SegmenterConfig::speech(16000));
        let mut stream = tone(5.0, 0.3);
        stream[100] = f32::NAN;
        stream[200] = f32::INFINITY;
        let found = seg.push(&stream);
        assert!(!found.is_empty());
        assert!(found[0].samples.len() <= 3 * 16000 + 160);
        assert!(found[0].samples.iter().all(|x| x.is_finite()));
    }
}
