//! Datasets shipped in numbered folds (ESC-50, UrbanSound8K) and the cross-validation rotations
//! over them.

use serde::Serialize;

use super::{Clip, Splits};

/// Which folds train, validate and test in one rotation (1-based fold numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// Training folds.
    pub train: Vec<usize>,
    /// Validation folds (may contain `test` in the reference's US8K protocol).
    pub valid: Vec<usize>,
    /// The test fold; rotations are named by it (`--fold N` tests on fold N).
    pub test: usize,
}

impl Rotation {
    /// The rotation of `folds` folds that tests on `test` (1-based): the folds after it, in
    /// cyclic order, train; with `hold_out_valid` the last of them (the one just before `test`)
    /// validates instead. `None` when `test` is not in `1..=folds` or `folds < 3`.
    ///
    /// For ESC-50 (`folds = 5`, held-out validation) this is PETL_AST's table exactly:
    /// test 5 → train 1,2,3 / valid 4; test 1 → train 2,3,4 / valid 5; …
    pub fn cyclic(folds: usize, test: usize, hold_out_valid: bool) -> Option<Rotation> {
        if folds < 3 || !(1..=folds).contains(&test) {
            return None;
        }
        let mut train: Vec<usize> = (1..folds).map(|k| (test - 1 + k) % folds + 1).collect();
        let valid = if hold_out_valid {
            vec![train.pop().expect("folds >= 3")]
        } else {
            Vec::new()
        };
        Some(Rotation { train, valid, test })
    }
}

/// The clips of a folded dataset with the fold of each, in metadata-file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Folded {
    /// Class names, in index order.
    pub labels: Vec<String>,
    /// Number of folds the dataset defines.
    pub folds: usize,
    /// Every clip with its 1-based fold.
    pub clips: Vec<(Clip, usize)>,
}

impl Folded {
    /// Clips per fold: entry `k` counts fold `k + 1`.
    pub fn fold_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.folds];
        for (_, fold) in &self.clips {
            sizes[fold - 1] += 1;
        }
        sizes
    }

    /// The train / valid / test clips of `rotation`, each in metadata-file order. A fold that is
    /// both validation and test (the reference's US8K protocol) lands in both.
    pub fn split(&self, rotation: &Rotation) -> Splits {
        let pick = |folds: &[usize]| -> Vec<Clip> {
            self.clips
                .iter()
                .filter(|(_, f)| folds.contains(f))
                .map(|(c, _)| c.clone())
                .collect()
        };
        Splits {
            labels: self.labels.clone(),
            train: pick(&rotation.train),
            valid: pick(&rotation.valid),
            test: pick(&[rotation.test]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclic_rotations_match_the_reference_tables() {
        // PETL_AST main.py, ESC-50: train [[1,2,3],[2,3,4],[3,4,5],[4,5,1],[5,1,2]],
        // valid [[4],[5],[1],[2],[3]], test [[5],[1],[2],[3],[4]].
        let r = Rotation::cyclic(5, 5, true).unwrap();
        assert_eq!((r.train, r.valid), (vec![1, 2, 3], vec![4]));
        let r = Rotation::cyclic(5, 1, true).unwrap();
        assert_eq!((r.train, r.valid), (vec![2, 3, 4], vec![5]));
        let r = Rotation::cyclic(10, 3, false).unwrap();
        assert_eq!(r.train, vec![4, 5, 6, 7, 8, 9, 10, 1, 2]);
        assert!(r.valid.is_empty());
        assert!(Rotation::cyclic(5, 0, true).is_none());
        assert!(Rotation::cyclic(5, 6, true).is_none());
    }
}
