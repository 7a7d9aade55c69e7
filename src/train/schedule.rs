//! Learning-rate schedule of the paper: cosine annealing from the peak to 0, stepped every batch,
//! no warm-up (`CosineAnnealingLR(T_max = steps_per_epoch · epochs)` in PETL_AST `main.py`).

/// `lr(t) = peak · ½(1 + cos(π t / total))` for `t` in `0..=total`, 0 after; with
/// `warmup_steps > 0` (not in the paper; useful from scratch) a linear ramp to `peak` comes first
/// and the cosine spans the remaining steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSchedule {
    /// Learning rate at the end of the warm-up (at step 0 without warm-up).
    pub peak: f64,
    /// Number of steps to reach 0.
    pub total_steps: usize,
    /// Linear warm-up steps (0 in the paper).
    pub warmup_steps: usize,
}

impl CosineSchedule {
    /// Learning rate at optimizer step `step`.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let total = self.total_steps.saturating_sub(self.warmup_steps);
        let step = step - self.warmup_steps;
        if total == 0 {
            return self.peak;
        }
        if step >= total {
            return 0.0;
        }
        let progress = step as f64 / total as f64;
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
            warmup_steps: 0,
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

    #[test]
    fn warmup_ramps_linearly_then_anneals() {
        let s = CosineSchedule {
            peak: 1e-3,
            total_steps: 110,
            warmup_steps: 10,
        };
        assert!((s.lr(0) - 1e-4).abs() < 1e-15);
        assert!((s.lr(9) - 1e-3).abs() < 1e-15);
        assert_eq!(s.lr(10), 1e-3);
        assert!((s.lr(60) - 0.5e-3).abs() < 1e-12);
        assert!(s.lr(110).abs() < 1e-12);
    }
}
