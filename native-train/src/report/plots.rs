//! The report's figures, each drawn once per backend: SVG (text left to the viewer's fonts) and
//! PNG (text rasterised with a TrueType font found on the system).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use petl_ast::io::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Where a TrueType font is looked for (after `$PETL_AST_FONT`); Debian's `fonts-dejavu-core`
/// provides the first.
const FONT_CANDIDATES: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a sans-serif font for plotters once; the error says how to provide one.
/// (Both backends measure text with it to lay out the axes.)
pub fn ensure_font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let from_env = std::env::var("PETL_AST_FONT").ok();
        let candidates = from_env.iter().map(String::as_str).chain(FONT_CANDIDATES);
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(
            "no TrueType font found for the plots (install fonts-dejavu-core, or set \
             PETL_AST_FONT to a .ttf file)"
                .to_string(),
        )
    })
    .clone()
}

/// One point of the accuracy-vs-parameters figure.
#[derive(Debug, Clone)]
pub struct MethodPoint {
    /// Method label.
    pub method: String,
    /// Dataset label (one colour per dataset).
    pub dataset: String,
    /// Trainable parameters.
    pub params: f64,
    /// Mean test accuracy, %.
    pub accuracy: f64,
    /// Standard deviation, %.
    pub std: f64,
}

/// Per-epoch metrics of one run.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    /// 1-based epochs.
    pub epochs: Vec<f64>,
    /// Training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch (may be empty).
    pub valid_loss: Vec<f64>,
    /// Training accuracy per epoch.
    pub train_accuracy: Vec<f64>,
    /// Validation accuracy per epoch (may be empty).
    pub valid_accuracy: Vec<f64>,
}

/// A figure.
#[derive(Debug, Clone)]
pub enum Figure {
    /// Test accuracy against trainable parameters, log x (paper Fig. 3).
    AccuracyVsParams(Vec<MethodPoint>),
    /// Loss and accuracy per epoch.
    Curves {
        /// Title.
        title: String,
        /// The data.
        curves: Curves,
    },
    /// Row-normalised confusion matrix with counts.
    Confusion {
        /// Title.
        title: String,
        /// Class names.
        labels: Vec<String>,
        /// `counts[true][predicted]`.
        counts: Vec<Vec<usize>>,
    },
    /// 2-D embedding coloured by class (paper Fig. 2).
    Scatter {
        /// Title.
        title: String,
        /// Class names.
        labels: Vec<String>,
        /// Points and their class.
        points: Vec<([f64; 2], usize)>,
    },
}

impl Figure {
    fn size(&self) -> (u32, u32) {
        match self {
            Figure::AccuracyVsParams(_) => (900, 600),
            Figure::Curves { .. } => (1000, 420),
            Figure::Confusion { labels, .. } => {
                let side = (320 + 28 * labels.len() as u32).clamp(480, 1400);
                (side + 80, side)
            }
            Figure::Scatter { .. } => (760, 640),
        }
    }
}

/// Writes `figure` as `dir/stem.svg` and `dir/stem.png` (atomically).
pub fn save(figure: &Figure, dir: &Path, stem: &str) -> Result<()> {
    ensure_font().map_err(anyhow::Error::msg)?;
    let (w, h) = figure.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        draw(&root, figure).map_err(|e| anyhow!("{stem}.svg: {e}"))?;
        root.present().map_err(|e| anyhow!("{stem}.svg: {e}"))?;
    }
    let svg_path = dir.join(format!("{stem}.svg"));
    write_atomic(&svg_path, svg.as_bytes())
        .with_context(|| format!("cannot write {}", svg_path.display()))?;

    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw(&root, figure).map_err(|e| anyhow!("{stem}.png: {e}"))?;
        root.present().map_err(|e| anyhow!("{stem}.png: {e}"))?;
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    let png_path = dir.join(format!("{stem}.png"));
    write_atomic(&png_path, &png_bytes)
        .with_context(|| format!("cannot write {}", png_path.display()))?;
    Ok(())
}

fn e<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<(), String> {
    root.fill(&WHITE).map_err(e)?;
    match figure {
        Figure::AccuracyVsParams(points) => accuracy_vs_params(root, points),
        Figure::Curves { title, curves } => draw_curves(root, title, curves),
        Figure::Confusion {
            title,
            labels,
            counts,
        } => confusion(root, title, labels, counts),
        Figure::Scatter {
            title,
            labels,
            points,
        } => scatter(root, title, labels, points),
    }
}

fn range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(1e-9);
    (lo - pad * span, hi + pad * span)
}

fn accuracy_vs_params<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[MethodPoint],
) -> Result<(), String> {
    let positive = || points.iter().map(|p| p.params).filter(|v| *v > 0.0);
    let x_lo = positive().fold(f64::INFINITY, f64::min);
    let x_hi = positive().fold(0.0, f64::max);
    // Whole decades around the points.
    let (x_lo, x_hi) = if x_lo.is_finite() {
        let lo = 10f64.powf(x_lo.log10().floor());
        let hi = 10f64.powf(x_hi.log10().ceil());
        (lo, if hi > lo { hi } else { lo * 10.0 })
    } else {
        (1.0, 10.0)
    };
    let (y_lo, y_hi) = range(
        points
            .iter()
            .flat_map(|p| [p.accuracy - p.std, p.accuracy + p.std]),
        0.15,
    );
    let mut chart = ChartBuilder::on(root)
        .caption("Test accuracy vs trainable parameters", ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(60)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), y_lo.max(0.0)..y_hi.min(100.0))
        .map_err(e)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("trainable parameters (log scale)")
        .y_desc("test accuracy (%)")
        .x_label_formatter(&|v| human(*v))
        .draw()
        .map_err(e)?;
    let mut datasets: Vec<&str> = Vec::new();
    for p in points {
        if !datasets.contains(&p.dataset.as_str()) {
            datasets.push(&p.dataset);
        }
    }
    for (k, dataset) in datasets.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let mine: Vec<&MethodPoint> = points
            .iter()
            .filter(|p| p.dataset == *dataset && p.params > 0.0)
            .collect();
        chart
            .draw_series(mine.iter().map(|p| {
                PathElement::new(
                    vec![
                        (p.params, p.accuracy - p.std),
                        (p.params, p.accuracy + p.std),
                    ],
                    color.stroke_width(2),
                )
            }))
            .map_err(e)?;
        chart
            .draw_series(
                mine.iter()
                    .map(|p| Circle::new((p.params, p.accuracy), 5, color.filled())),
            )
            .map_err(e)?
            .label(dataset.to_string())
            .legend(move |(x, y)| Circle::new((x, y), 5, color.filled()));
        chart
            .draw_series(mine.iter().map(|p| {
                Text::new(
                    format!(" {}", p.method),
                    (p.params, p.accuracy),
                    ("sans-serif", 13).into_font(),
                )
            }))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(e)?;
    Ok(())
}

/// 1,234 → "1.2k", 86,000,000 → "86M".
fn human(v: f64) -> String {
    let (scaled, unit) = if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if scaled >= 10.0 || scaled.fract().abs() < 1e-9 {
        format!("{scaled:.0}{unit}")
    } else {
        format!("{scaled:.1}{unit}")
    }
}

fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    c: &Curves,
) -> Result<(), String> {
    let root = root.titled(title, ("sans-serif", 20)).map_err(e)?;
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
    let x_hi = c.epochs.last().copied().unwrap_or(1.0).max(1.0);
    let panels = [
        (&left, "loss", &c.train_loss, &c.valid_loss),
        (&right, "accuracy", &c.train_accuracy, &c.valid_accuracy),
    ];
    for (area, what, train, valid) in panels {
        let (y_lo, y_hi) = range(train.iter().chain(valid.iter()).copied(), 0.1);
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5..x_hi + 0.5, y_lo..y_hi)
            .map_err(e)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .x_desc("epoch")
            .y_desc(what)
            .draw()
            .map_err(e)?;
        for (k, (name, values)) in [("train", train), ("valid", valid)].into_iter().enumerate() {
            if values.is_empty() {
                continue;
            }
            let color = Palette99::pick(k).to_rgba();
            let series: Vec<(f64, f64)> = c
                .epochs
                .iter()
                .copied()
                .zip(values.iter().copied())
                .collect();
            chart
                .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

fn confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    labels: &[String],
    counts: &[Vec<usize>],
) -> Result<(), String> {
    let k = labels.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..k as f64, 0.0..k as f64)
        .map_err(e)?;
    let name = |v: f64| -> String {
        let i = v.floor() as usize;
        if (v - i as f64 - 0.5).abs() < 1e-6 && i < labels.len() {
            labels[i].clone()
        } else {
            String::new()
        }
    };
    // Row i (true class i) is drawn from the top.
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_labels(2 * k + 1)
        .y_labels(2 * k + 1)
        .x_label_formatter(&|v| name(*v))
        .y_label_formatter(&|v| name(k as f64 - *v))
        .draw()
        .map_err(e)?;
    let show_counts = k <= 20;
    for (t, row) in counts.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &n) in row.iter().enumerate() {
            let share = n as f64 / total;
            let shade = (255.0 * (1.0 - share)) as u8;
            let y0 = (k - 1 - t) as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(p as f64, y0), (p as f64 + 1.0, y0 + 1.0)],
                    RGBColor(shade, shade, 255).filled(),
                )))
                .map_err(e)?;
            if show_counts && n > 0 {
                let color = if share > 0.5 { WHITE } else { BLACK };
                let style = ("sans-serif", 14)
                    .into_font()
                    .color(&color)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart
                    .draw_series(std::iter::once(Text::new(
                        n.to_string(),
                        (p as f64 + 0.5, y0 + 0.5),
                        style,
                    )))
                    .map_err(e)?;
            }
        }
    }
    Ok(())
}

fn scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    labels: &[String],
    points: &[([f64; 2], usize)],
) -> Result<(), String> {
    let (x_lo, x_hi) = range(points.iter().map(|(p, _)| p[0]), 0.05);
    let (y_lo, y_hi) = range(points.iter().map(|(p, _)| p[1]), 0.05);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(e)?;
    chart.configure_mesh().disable_mesh().draw().map_err(e)?;
    for (class, name) in labels.iter().enumerate() {
        let color = Palette99::pick(class).to_rgba();
        let mine: Vec<[f64; 2]> = points
            .iter()
            .filter(|(_, c)| *c == class)
            .map(|(p, _)| *p)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let series = chart
            .draw_series(
                mine.iter()
                    .map(|p| Circle::new((p[0], p[1]), 4, color.filled())),
            )
            .map_err(e)?;
        if labels.len() <= 20 {
            series
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
        }
    }
    if labels.len() <= 20 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_read_well() {
        assert_eq!(human(3226.0), "3.2k");
        assert_eq!(human(248_976.0), "249k");
        assert_eq!(human(86_200_000.0), "86M");
        assert_eq!(human(500.0), "500");
        assert_eq!(human(1000.0), "1k");
    }
}
