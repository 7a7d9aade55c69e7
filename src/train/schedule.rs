//! Learning-rate schedule of the paper: cosine annealing from the peak to 0, stepped every batch,
//! no warm-up (`CosineAnnealingLR(T_max = steps_per_epoch · epochs)` in PETL_AST `main.py`).

/// `lr(t) = peak · ½(1 + cos(π t / total))` for `t` in `0..=total`, 0 after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSchedule {
    /// Learning rate at step 0.
    pub peak: f64,
    /// Number of steps to reach 0.
    pub total_steps: usize,
}

impl CosineSchedule {
    /// Learning rate at optimizer step `step`.
    pub fn lr(&self, step: usize) -> f64 {
        if self.total_steps == 0 || step >= self.total_steps {
            return if self.total_steps == 0 {
                self.peak
            } else {
                0.0
            };
        }
        let progress = step as f64 / self.total_steps as f64;
        self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_torch_cosine_annealing() {
        let s = CosineSchedule {
            peak: 5e-3,
            total_steps: 100,
        };
        assert_eq!(s.lr(0), 5e-3);
        assert!((s.lr(50) - 2.5e-3).abs() < 1e-12);
        assert!((s.lr(25) - 5e-3 * 0.5 * (1.0 + (std::f64::consts::PI / 4.0).cos())).abs() < 1e-12);
        assert!(s.lr(100).abs() < 1e-12);
        assert!(
            (1..100).all(|t| s.lr(t) < s.lr(t - 1)),
            "monotonically decreasing"
        );
    }
}
