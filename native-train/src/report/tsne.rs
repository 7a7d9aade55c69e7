//! Exact t-SNE (van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 2008): Gaussian
//! input affinities calibrated to a perplexity by binary search, Student-t output affinities,
//! early exaggeration, gradient descent with momentum and per-coordinate gains. O(n²) memory and
//! time per iteration: meant for a test set of up to a few thousand points.

/// Settings (the defaults are the paper's and scikit-learn's).
#[derive(Debug, Clone, PartialEq)]
pub struct TsneConfig {
    /// Effective number of neighbours (clamped below `(n − 1) / 3`).
    pub perplexity: f64,
    /// Gradient steps.
    pub iterations: usize,
    /// Step size (`None`: max(n / early_exaggeration / 4, 50), scikit-learn's "auto").
    pub learning_rate: Option<f64>,
    /// Factor on the input affinities during the first steps.
    pub early_exaggeration: f64,
    /// Steps with exaggeration (and momentum 0.5; 0.8 after).
    pub exaggeration_iterations: usize,
    /// Seed of the initial layout.
    pub seed: u64,
}

impl Default for TsneConfig {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            iterations: 1000,
            learning_rate: None,
            early_exaggeration: 12.0,
            exaggeration_iterations: 250,
            seed: 0,
        }
    }
}

/// Squared Euclidean distances between the rows of `x` (`n × d`, row-major).
fn squared_distances(x: &[f32], n: usize, d: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        for j in i + 1..n {
            let xj = &x[j * d..(j + 1) * d];
            let s: f64 = xi
                .iter()
                .zip(xj)
                .map(|(a, b)| {
                    let t = (*a - *b) as f64;
                    t * t
                })
                .sum();
            out[i * n + j] = s;
            out[j * n + i] = s;
        }
    }
    out
}

/// Conditional affinities `p_{j|i}` (row `i`), each row's Gaussian precision found by bisection
/// so that its entropy is `ln(perplexity)`. Returns the rows and their entropies.
fn conditional_affinities(dist: &[f64], n: usize, perplexity: f64) -> (Vec<f64>, Vec<f64>) {
    let target = perplexity.ln();
    let mut p = vec![0.0; n * n];
    let mut entropies = vec![0.0; n];
    for i in 0..n {
        let row = &dist[i * n..(i + 1) * n];
        // Distances relative to the nearest neighbour keep exp() in range.
        let nearest = (0..n)
            .filter(|&j| j != i)
            .map(|j| row[j])
            .fold(f64::INFINITY, f64::min);
        let (mut beta, mut lo, mut hi) = (1.0, 0.0, f64::INFINITY);
        let out = &mut p[i * n..(i + 1) * n];
        let mut entropy = 0.0;
        for _ in 0..200 {
            let mut sum = 0.0;
            for j in 0..n {
                out[j] = if j == i {
                    0.0
                } else {
                    (-(row[j] - nearest) * beta).exp()
                };
                sum += out[j];
            }
            // H = ln Σ + β Σ p_j d_j (with d relative to the nearest).
            let weighted: f64 = (0..n).map(|j| out[j] * (row[j] - nearest)).sum::<f64>() / sum;
            entropy = sum.ln() + beta * weighted;
            for v in out.iter_mut() {
                *v /= sum;
            }
            let diff = entropy - target;
            if diff.abs() < 1e-5 {
                break;
            }
            if diff > 0.0 {
                // Too flat: sharpen.
                lo = beta;
                beta = if hi.is_finite() {
                    (beta + hi) / 2.0
                } else {
                    beta * 2.0
                };
            } else {
                hi = beta;
                beta = (beta + lo) / 2.0;
            }
        }
        entropies[i] = entropy;
    }
    (p, entropies)
}

/// SplitMix64 then Box–Muller: the small Gaussian initial layout.
fn gaussian(seed: u64, count: usize, scale: f64) -> Vec<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| {
            let (u, v) = (next().max(1e-300), next());
            scale * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

/// Embeds the `n` rows of `x` (`n × d`, row-major) in 2-D. `progress` sees each finished
/// iteration.
pub fn tsne(
    x: &[f32],
    n: usize,
    d: usize,
    config: &TsneConfig,
    progress: &mut dyn FnMut(usize),
) -> Vec<[f64; 2]> {
    assert_eq!(x.len(), n * d, "t-SNE input is {n} × {d}");
    if n < 2 {
        return vec![[0.0, 0.0]; n];
    }
    let perplexity = config
        .perplexity
        .min((n - 1) as f64 / 3.0)
        .max(1.0_f64.min((n - 1) as f64));
    let dist = squared_distances(x, n, d);
    let (conditional, _) = conditional_affinities(&dist, n, perplexity);
    drop(dist);
    // Symmetric joint affinities.
    let mut p = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            p[i * n + j] =
                ((conditional[i * n + j] + conditional[j * n + i]) / (2.0 * n as f64)).max(1e-12);
        }
    }
    drop(conditional);
    let lr = config
        .learning_rate
        .unwrap_or_else(|| (n as f64 / config.early_exaggeration / 4.0).max(50.0));
    let mut y = gaussian(config.seed, 2 * n, 1e-4);
    let mut update = vec![0.0; 2 * n];
    let mut gains = vec![1.0; 2 * n];
    let mut num = vec![0.0; n * n];
    let mut grad = vec![0.0; 2 * n];
    for it in 0..config.iterations {
        let early = it < config.exaggeration_iterations;
        let exaggeration = if early {
            config.early_exaggeration
        } else {
            1.0
        };
        let momentum = if early { 0.5 } else { 0.8 };
        // Student-t kernel.
        let mut sum = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                let v = 1.0 / (1.0 + dx * dx + dy * dy);
                num[i * n + j] = v;
                num[j * n + i] = v;
                sum += 2.0 * v;
            }
        }
        // ∂C/∂y_i = 4 Σ_j (p_ij − q_ij) (1 + |y_i − y_j|²)⁻¹ (y_i − y_j).
        grad.fill(0.0);
        for i in 0..n {
            let (mut gx, mut gy) = (0.0, 0.0);
            for j in 0..n {
                if i == j {
                    continue;
                }
                let v = num[i * n + j];
                let m = (exaggeration * p[i * n + j] - v / sum) * v;
                gx += m * (y[2 * i] - y[2 * j]);
                gy += m * (y[2 * i + 1] - y[2 * j + 1]);
            }
            grad[2 * i] = 4.0 * gx;
            grad[2 * i + 1] = 4.0 * gy;
        }
        for k in 0..2 * n {
            gains[k] = if (grad[k] > 0.0) != (update[k] > 0.0) {
                gains[k] + 0.2
            } else {
                (gains[k] * 0.8_f64).max(0.01)
            };
            update[k] = momentum * update[k] - lr * gains[k] * grad[k];
            y[k] += update[k];
        }
        let (mx, my) = (0..n).fold((0.0, 0.0), |(a, b), i| (a + y[2 * i], b + y[2 * i + 1]));
        for i in 0..n {
            y[2 * i] -= mx / n as f64;
            y[2 * i + 1] -= my / n as f64;
        }
        progress(it + 1);
    }
    (0..n).map(|i| [y[2 * i], y[2 * i + 1]]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Gaussian clusters in 10-D, `per` points each, centres 10 apart, unit spread.
    fn clusters(per: usize) -> (Vec<f32>, Vec<usize>) {
        let noise = gaussian(5, 2 * per * 10, 1.0);
        let mut x = Vec::new();
        let mut labels = Vec::new();
        for c in 0..2 {
            for i in 0..per {
                for k in 0..10 {
                    let centre = if c == 1 && k < 2 { 7.0 } else { 0.0 };
                    x.push((centre + noise[(c * per + i) * 10 + k]) as f32);
                }
                labels.push(c);
            }
        }
        (x, labels)
    }

    #[test]
    fn the_bisection_reaches_the_perplexity() {
        let (x, _) = clusters(30);
        let n = 60;
        let dist = squared_distances(&x, n, 10);
        let (p, entropies) = conditional_affinities(&dist, n, 10.0);
        for i in 0..n {
            assert!((entropies[i] - 10f64.ln()).abs() < 1e-4, "row {i}");
            let row: f64 = p[i * n..(i + 1) * n].iter().sum();
            assert!((row - 1.0).abs() < 1e-9);
            assert_eq!(p[i * n + i], 0.0);
        }
    }

    #[test]
    fn separates_two_gaussian_clusters() {
        let (x, labels) = clusters(40);
        let n = labels.len();
        let config = TsneConfig {
            perplexity: 10.0,
            iterations: 500,
            ..TsneConfig::default()
        };
        let mut last = 0;
        let y = tsne(&x, n, 10, &config, &mut |it| last = it);
        assert_eq!(last, 500);
        assert!(y.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
        // Every point's nearest neighbour in the plane is from its own cluster.
        for i in 0..n {
            let nearest = (0..n)
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let da = (y[i][0] - y[a][0]).powi(2) + (y[i][1] - y[a][1]).powi(2);
                    let db = (y[i][0] - y[b][0]).powi(2) + (y[i][1] - y[b][1]).powi(2);
                    da.total_cmp(&db)
                })
                .unwrap();
            assert_eq!(labels[nearest], labels[i], "point {i}");
        }
        // The clusters lie far apart compared with their own spread.
        let centre = |c: usize| {
            let pts: Vec<_> = (0..n).filter(|&i| labels[i] == c).map(|i| y[i]).collect();
            let m = pts.len() as f64;
            let cx = pts.iter().map(|p| p[0]).sum::<f64>() / m;
            let cy = pts.iter().map(|p| p[1]).sum::<f64>() / m;
            let spread = (pts
                .iter()
                .map(|p| (p[0] - cx).powi(2) + (p[1] - cy).powi(2))
                .sum::<f64>()
                / m)
                .sqrt();
            ([cx, cy], spread)
        };
        let ((a, sa), (b, sb)) = (centre(0), centre(1));
        let gap = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        assert!(gap > 2.0 * (sa + sb), "gap {gap}, spreads {sa} {sb}");
    }

    #[test]
    fn tiny_inputs_do_not_fail() {
        assert_eq!(
            tsne(&[1.0, 2.0], 1, 2, &TsneConfig::default(), &mut |_| {}).len(),
            1
        );
        let y = tsne(
            &[0.0, 0.0, 1.0, 1.0, 5.0, 5.0],
            3,
            2,
            &TsneConfig {
                iterations: 50,
                ..TsneConfig::default()
            },
            &mut |_| {},
        );
        assert!(y.iter().flatten().all(|v| v.is_finite()));
    }
}
