//! Adapting learned position embeddings to another input length, as the original AST code does
//! when fine-tuning on clips of another length (`ASTModel.__init__` in YuanGongND/ast: centre crop
//! of the grid when it shrinks, bilinear interpolation when it grows).

/// What to do with the checkpoint's position embeddings when the requested `max_length` gives a
/// different number of patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionMode {
    /// Crop / interpolate the checkpoint's grid (the original AST recipe).
    #[default]
    Adapt,
    /// Zeros, which is what `ASTModel.from_pretrained(..., max_length=L,
    /// ignore_mismatched_sizes=True)` gives in the PETL_AST reference (`_init_weights` zeroes
    /// the re-created `position_embeddings`).
    Zero,
}

/// A `[freq, time, d]` grid of embeddings, stored row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Values, `freq * time * d`.
    pub data: Vec<f32>,
    /// Patches along mel.
    pub freq: usize,
    /// Patches along time.
    pub time: usize,
    /// Width of each embedding.
    pub d: usize,
}

impl Grid {
    /// Resizes to `(freq, time)`: first the time axis, then the frequency axis, each by a centre
    /// crop when shrinking and a linear interpolation (`F.interpolate(mode="bilinear",
    /// align_corners=False)`) when growing.
    pub fn resize(self, freq: usize, time: usize) -> Grid {
        self.resize_time(time)
            .transposed()
            .resize_time(freq)
            .transposed()
    }

    fn transposed(self) -> Grid {
        let mut data = vec![0.0; self.data.len()];
        for f in 0..self.freq {
            for t in 0..self.time {
                let from = (f * self.time + t) * self.d;
                let to = (t * self.freq + f) * self.d;
                data[to..to + self.d].copy_from_slice(&self.data[from..from + self.d]);
            }
        }
        Grid {
            data,
            freq: self.time,
            time: self.freq,
            d: self.d,
        }
    }

    fn resize_time(self, time: usize) -> Grid {
        let d = self.d;
        let old = self.time;
        if time == old {
            return self;
        }
        let mut data = Vec::with_capacity(self.freq * time * d);
        for f in 0..self.freq {
            let row = &self.data[f * old * d..(f + 1) * old * d];
            if time < old {
                let start = old / 2 - time / 2;
                data.extend_from_slice(&row[start * d..(start + time) * d]);
            } else {
                let scale = old as f32 / time as f32;
                for t in 0..time {
                    let src = ((t as f32 + 0.5) * scale - 0.5).max(0.0);
                    let i0 = (src as usize).min(old - 1);
                    let i1 = (i0 + 1).min(old - 1);
                    let w1 = src - i0 as f32;
                    let w0 = 1.0 - w1;
                    for k in 0..d {
                        data.push(w0 * row[i0 * d + k] + w1 * row[i1 * d + k]);
                    }
                }
            }
        }
        Grid {
            data,
            freq: self.freq,
            time,
            d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(freq: usize, time: usize) -> Grid {
        Grid {
            data: (0..freq * time).map(|i| i as f32).collect(),
            freq,
            time,
            d: 1,
        }
    }

    #[test]
    fn same_size_is_identity() {
        assert_eq!(grid(3, 4).resize(3, 4), grid(3, 4));
    }

    #[test]
    fn shrinking_takes_the_centre() {
        // time 5 -> 3: start = 5/2 - 3/2 = 1.
        let g = grid(2, 5).resize(2, 3);
        assert_eq!(g.data, vec![1., 2., 3., 6., 7., 8.]);
        // freq 4 -> 2: start = 1.
        let g = grid(4, 1).resize(2, 1);
        assert_eq!(g.data, vec![1., 2.]);
    }

    #[test]
    fn growing_interpolates_like_torch() {
        // F.interpolate(tensor([[[[0., 1.]]]]), size=(1, 4), mode="bilinear") = [0, .25, .75, 1].
        let g = Grid {
            data: vec![0., 1.],
            freq: 1,
            time: 2,
            d: 1,
        }
        .resize(1, 4);
        assert_eq!(g.data, vec![0., 0.25, 0.75, 1.]);
    }
}
