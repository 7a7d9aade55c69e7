//! A tolerant look at the first bytes of a would-be WAV file.
//!
//! `hound` does the real parsing; this module only finds the `fmt ` chunk in a prefix of the
//! file so that refusals can say *what* the file holds ("12-bit integer PCM", "MPEG layer 3",
//! "64-bit float") and how wide one stored sample is. It never indexes out of bounds: every
//! read goes through `slice::get`.

/// `WAVE_FORMAT_PCM`.
pub(crate) const TAG_PCM: u16 = 0x0001;
/// `WAVE_FORMAT_IEEE_FLOAT`.
pub(crate) const TAG_FLOAT: u16 = 0x0003;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is in the sub-format GUID.
pub(crate) const TAG_EXTENSIBLE: u16 = 0xFFFE;

/// What the `fmt ` chunk of a WAV file declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FmtInfo {
    /// `wFormatTag`.
    pub format_tag: u16,
    /// `nChannels`.
    pub channels: u16,
    /// `nSamplesPerSec`.
    pub sample_rate: u32,
    /// `nBlockAlign`: bytes of one frame (all channels).
    pub block_align: u16,
    /// `wBitsPerSample`: bits of one stored sample (container).
    pub bits_per_sample: u16,
    /// `wValidBitsPerSample` of `WAVE_FORMAT_EXTENSIBLE`.
    pub valid_bits: Option<u16>,
    /// First two bytes of the sub-format GUID of `WAVE_FORMAT_EXTENSIBLE` (a format tag).
    pub sub_format: Option<u16>,
}

impl FmtInfo {
    /// The format tag that describes the samples (the sub-format for `WAVE_FORMAT_EXTENSIBLE`).
    pub fn effective_tag(&self) -> u16 {
        match (self.format_tag, self.sub_format) {
            (TAG_EXTENSIBLE, Some(sub)) => sub,
            (tag, _) => tag,
        }
    }

    /// Significant bits per sample, as `hound` understands them.
    pub fn bits(&self) -> u16 {
        match self.valid_bits {
            Some(v) if v > 0 => v,
            _ => self.bits_per_sample,
        }
    }

    /// Bytes one sample of one channel occupies in the data chunk.
    pub fn container_bytes(&self) -> Option<u16> {
        if self.channels == 0 {
            return None;
        }
        let bytes = self.block_align / self.channels;
        (bytes > 0).then_some(bytes)
    }

    /// Whether `hound` decodes these samples and this crate scales them.
    pub fn is_supported(&self) -> bool {
        let container = self.container_bytes().unwrap_or(0);
        match self.effective_tag() {
            TAG_PCM => matches!(
                (container, self.bits()),
                (1, 8) | (2, 16) | (3, 24) | (4, 24) | (4, 32)
            ),
            TAG_FLOAT => (container, self.bits()) == (4, 32),
            _ => false,
        }
    }

    /// Human description of the sample encoding, e.g. `12-bit integer PCM`.
    pub fn describe(&self) -> String {
        let container = self.container_bytes().unwrap_or(0);
        let in_container = if u32::from(container) * 8 != u32::from(self.bits()) {
            format!(" in {container}-byte containers")
        } else {
            String::new()
        };
        match self.effective_tag() {
            TAG_PCM => format!("{}-bit integer PCM{in_container}", self.bits()),
            TAG_FLOAT => format!("{}-bit float{in_container}", self.bits()),
            tag => format!("format tag 0x{tag:04X} ({})", tag_name(tag)),
        }
    }
}

/// The usual name of a WAV format tag.
pub(crate) fn tag_name(tag: u16) -> &'static str {
    match tag {
        0x0001 => "integer PCM",
        0x0002 => "Microsoft ADPCM",
        0x0003 => "IEEE float",
        0x0006 => "A-law",
        0x0007 => "mu-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG layer 1/2",
        0x0055 => "MPEG layer 3",
        0x00FF | 0x1610 => "AAC",
        0xFFFE => "extensible",
        _ => "compressed or vendor-specific",
    }
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `RIFF....WAVE`?
pub(crate) fn is_riff_wave(head: &[u8]) -> bool {
    head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WAVE"
}

/// Finds and decodes the `fmt ` chunk within `head` (a prefix of the file).
/// `None` if `head` is not RIFF/WAVE or the chunk is not (completely) inside `head`.
pub(crate) fn find_fmt(head: &[u8]) -> Option<FmtInfo> {
    if !is_riff_wave(head) {
        return None;
    }
    let mut at = 12usize;
    loop {
        let id = head.get(at..at.checked_add(4)?)?;
        let len = u32_at(head, at + 4)? as usize;
        let body = at.checked_add(8)?;
        if id == b"fmt " {
            if len < 16 {
                return None;
            }
            let mut info = FmtInfo {
                format_tag: u16_at(head, body)?,
                channels: u16_at(head, body + 2)?,
                sample_rate: u32_at(head, body + 4)?,
                block_align: u16_at(head, body + 12)?,
                bits_per_sample: u16_at(head, body + 14)?,
                valid_bits: None,
                sub_format: None,
            };
            if info.format_tag == TAG_EXTENSIBLE && len >= 40 {
                info.valid_bits = u16_at(head, body + 18);
                info.sub_format = u16_at(head, body + 24);
            }
            return Some(info);
        }
        if id == b"data" {
            return None;
        }
        // Chunks are padded to an even length.
        at = body.checked_add(len)?.checked_add(len & 1)?;
    }
}

/// The first bytes as hex plus their printable ASCII, e.g. `49 44 33 04 00 ("ID3..")`.
pub(crate) fn describe_first_bytes(head: &[u8]) -> String {
    let shown = &head[..head.len().min(12)];
    let hex: Vec<String> = shown.iter().map(|b| format!("{b:02X}")).collect();
    let ascii: String = shown
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{} \"{ascii}\"", hex.join(" "))
}

/// A guess at what a non-WAV file is, from its magic bytes (`""` when unknown).
pub(crate) fn guess_kind(head: &[u8]) -> &'static str {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        " (looks like MP3)"
    } else if starts(b"fLaC") {
        " (looks like FLAC)"
    } else if starts(b"OggS") {
        " (looks like Ogg/Opus/Vorbis)"
    } else if starts(b"RF64") || starts(b"BW64") {
        " (RF64/BW64 WAV for files over 4 GB is not supported)"
    } else if starts(b"RIFX") {
        " (big-endian RIFX is not supported)"
    } else if starts(b"FORM") {
        " (looks like AIFF)"
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        " (looks like WebM/Matroska)"
    } else if head.get(4..8) == Some(b"ftyp") {
        " (looks like MP4/M4A)"
    } else if starts(b"RIFF") && head.len() >= 12 {
        " (a RIFF file, but not of type WAVE)"
    } else if starts(b"RIFF") {
        " (a RIFF header cut short)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
        let mut v = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00".to_vec();
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        v.extend_from_slice(&block_align.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data\x00\x00\x00\x00");
        v
    }

    #[test]
    fn finds_fmt_and_judges_support() {
        let info = find_fmt(&header(1, 2, 16000, 4, 16)).unwrap();
        assert_eq!(info.channels, 2);
        assert_eq!(info.sample_rate, 16000);
        assert_eq!(info.container_bytes(), Some(2));
        assert!(info.is_supported());
        assert_eq!(info.describe(), "16-bit integer PCM");

        let twelve = find_fmt(&header(1, 1, 8000, 2, 12)).unwrap();
        assert!(!twelve.is_supported());
        assert_eq!(twelve.describe(), "12-bit integer PCM in 2-byte containers");

        let f64_ = find_fmt(&header(3, 1, 8000, 8, 64)).unwrap();
        assert!(!f64_.is_supported());
        assert_eq!(f64_.describe(), "64-bit float");

        let mp3 = find_fmt(&header(0x55, 1, 8000, 1, 0)).unwrap();
        assert_eq!(mp3.describe(), "format tag 0x0055 (MPEG layer 3)");
        assert!(find_fmt(&header(1, 1, 8000, 1, 8)).unwrap().is_supported());
        assert!(find_fmt(&header(3, 1, 8000, 4, 32)).unwrap().is_supported());
    }

    #[test]
    fn skips_unknown_chunks_and_survives_garbage() {
        let mut v = b"RIFF\x00\x00\x00\x00WAVELIST\x03\x00\x00\x00abc\x00".to_vec();
        v.extend_from_slice(&header(1, 1, 44100, 3, 24)[12..]);
        let info = find_fmt(&v).unwrap();
        assert_eq!(info.sample_rate, 44100);
        assert_eq!(info.describe(), "24-bit integer PCM");
        // Chunk length pointing far past the end, truncated chunks, empty input.
        let mut huge = b"RIFF\x00\x00\x00\x00WAVEjunk\xFF\xFF\xFF\xFF".to_vec();
        huge.extend_from_slice(&[0u8; 10]);
        assert_eq!(find_fmt(&huge), None);
        for n in 0..header(1, 1, 8000, 2, 16).len() {
            let _ = find_fmt(&header(1, 1, 8000, 2, 16)[..n]);
        }
        assert_eq!(find_fmt(&[]), None);
        let zero = find_fmt(&header(1, 0, 8000, 2, 16)).unwrap();
        assert_eq!(zero.container_bytes(), None);
        assert!(!zero.is_supported());
    }

    #[test]
    fn describes_and_guesses_non_wav_input() {
        assert_eq!(
            describe_first_bytes(b"ID3\x04\x00"),
            "49 44 33 04 00 \"ID3..\""
        );
        assert_eq!(describe_first_bytes(&[]), " \"\"");
        assert!(guess_kind(b"ID3\x04").contains("MP3"));
        assert!(guess_kind(b"fLaC\x00").contains("FLAC"));
        assert!(guess_kind(b"OggS").contains("Ogg"));
        assert!(guess_kind(b"RF64\x00\x00\x00\x00WAVE").contains("RF64"));
        assert!(guess_kind(b"\x00\x00\x00\x20ftypM4A ").contains("MP4"));
        assert!(guess_kind(b"RIFF\x00\x00\x00\x00AVI ").contains("not of type WAVE"));
        assert_eq!(guess_kind(b"hello"), "");
    }
}
