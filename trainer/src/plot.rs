//! PNG plots written next to a trained model: loss and accuracy per epoch, and the
//! histogram of |int - f32| output differences of the quantized blob.
//!
//! Text needs a TrueType font; the first of a few common system fonts is used. Without
//! one the plots are still drawn, without captions and axis labels.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, ensure, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::files;
use crate::train::EpochStats;

const FONT: &str = "sans-serif";
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a system font once; false when none could be read.
fn have_font() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        FONT_PATHS.iter().any(|path| {
            std::fs::read(path).is_ok_and(|bytes| {
                // The registry keeps fonts for the whole process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
            })
        })
    })
}

fn plot_error(path: &Path, err: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing {}: {err}", path.display())
}

/// Draws a white `size` picture with `draw` and writes it to `path` as a PNG,
/// atomically ([`files::write_atomic`]): a plot that fails, or a run stopped
/// meanwhile, leaves the earlier file whole.
fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    let (width, height) = size;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(&root)?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Plots are mostly flat colour: per-row filters and full compression make the
    // files a third of the defaults' size.
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    encoder.set_compression(png::Compression::Best);
    encoder
        .write_header()
        .and_then(|mut writer| {
            writer.write_image_data(&rgb)?;
            writer.finish()
        })
        .map_err(|e| plot_error(path, e))?;
    files::write_atomic(path, &bytes)
}

/// Range of `values` with a margin, never empty.
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let margin = ((hi - lo) * 0.08).max(1e-3);
    (lo - margin)..(hi + margin)
}

type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &[Series],
    epochs: usize,
    path: &Path,
) -> Result<()> {
    let y_range = padded_range(series.iter().flat_map(|s| s.2.iter().map(|p| p.1)));
    let text = have_font();
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(title, (FONT, 20))
            .x_label_area_size(36)
            .y_label_area_size(56);
    }
    let mut chart = builder
        .build_cartesian_2d(0.5f64..(epochs as f64 + 0.5), y_range)
        .map_err(|e| plot_error(path, e))?;
    if text {
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(epochs.min(12))
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
    }
    for (name, color, points) in series {
        if points.is_empty() {
            continue;
        }
        let color = *color;
        let drawn = chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| plot_error(path, e))?;
        if text {
            drawn
                .label(*name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color));
        }
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| plot_error(path, e))?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(|e| plot_error(path, e))?;
    }
    Ok(())
}

/// `curves.png`: training and validation loss (left) and accuracy (right) per epoch.
pub fn training_curves(history: &[EpochStats], path: &Path) -> Result<()> {
    ensure!(!history.is_empty(), "no epochs to plot");
    let pick = |f: &dyn Fn(&EpochStats) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|s| f(s).map(|v| (s.epoch as f64, v)))
            .collect()
    };
    let epochs = history.last().map_or(1, |s| s.epoch);
    write_png(path, (1100, 420), |root| {
        let (left, right) = root.split_horizontally(550);
        draw_panel(
            &left,
            "loss",
            &[
                ("train", BLUE, pick(&|s| Some(s.train_loss))),
                ("validation", RED, pick(&|s| s.val_loss)),
            ],
            epochs,
            path,
        )?;
        draw_panel(
            &right,
            "accuracy",
            &[
                ("train", BLUE, pick(&|s| Some(s.train_accuracy))),
                ("validation", RED, pick(&|s| s.val_accuracy)),
            ],
            epochs,
            path,
        )
    })
}

/// Counts of `values` in `bins` equal bins over `[0, max]`.
pub fn histogram(values: &[f64], bins: usize) -> (f64, Vec<u64>) {
    let max = values.iter().copied().fold(0.0, f64::max);
    let mut counts = vec![0u64; bins.max(1)];
    let width = if max > 0.0 { max / bins as f64 } else { 1.0 };
    for &v in values {
        let bin = ((v / width) as usize).min(counts.len() - 1);
        counts[bin] += 1;
    }
    (width, counts)
}

/// `quant-error.png`: histogram of |int - f32| over all evaluated outputs.
pub fn quantization_error(abs_diffs: &[f64], path: &Path) -> Result<()> {
    ensure!(!abs_diffs.is_empty(), "no output differences to plot");
    let (width, counts) = histogram(abs_diffs, 40);
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let text = have_font();
    write_png(path, (800, 480), |root| {
        let mut builder = ChartBuilder::on(root);
        builder.margin(14);
        if text {
            builder
                .caption(
                    format!("|int - f32| of {} outputs", abs_diffs.len()),
                    (FONT, 20),
                )
                .x_label_area_size(40)
                .y_label_area_size(64);
        }
        let mut chart = builder
            // Counts on an integer axis, whose ticks are whole numbers.
            .build_cartesian_2d(0.0..width * counts.len() as f64, 0..top + top / 20 + 1)
            .map_err(|e| plot_error(path, e))?;
        if text {
            chart
                .configure_mesh()
                .x_desc("|int - f32|")
                .y_desc("outputs")
                .x_label_formatter(&|v| format!("{v:.1e}"))
                .label_style((FONT, 13))
                .draw()
                .map_err(|e| plot_error(path, e))?;
        }
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = i as f64 * width;
                Rectangle::new([(x0, 0), (x0 + width, c)], BLUE.mix(0.7).filled())
            }))
            .map_err(|e| plot_error(path, e))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(epoch: usize, loss: f64) -> EpochStats {
        EpochStats {
            epoch,
            train_loss: loss,
            train_accuracy: 1.0 - loss / 2.0,
            val_loss: Some(loss + 0.1),
            val_accuracy: Some(0.9 - loss / 2.0),
            seconds: 1.0,
            samples_per_second: 100.0,
            skipped_steps: 0,
        }
    }

    #[test]
    fn histogram_puts_each_value_in_one_bin() {
        let (width, counts) = histogram(&[0.0, 0.05, 0.1, 0.95, 1.0], 10);
        assert!((width - 0.1).abs() < 1e-12);
        assert_eq!(counts.iter().sum::<u64>(), 5);
        assert_eq!((counts[0], counts[1], counts[9]), (2, 1, 2));
        let (_, zeros) = histogram(&[0.0, 0.0], 4);
        assert_eq!(zeros, vec![2, 0, 0, 0]);
    }

    #[test]
    fn plots_are_png_files() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let curves = dir.path().join("curves.png");
        training_curves(&[stats(1, 0.7), stats(2, 0.5), stats(3, 0.4)], &curves)?;
        let errors = dir.path().join("quant-error.png");
        quantization_error(&[0.001, 0.002, 0.0005, 0.01], &errors)?;
        for (path, size) in [(&curves, (1100, 420)), (&errors, (800, 480))] {
            let bytes = std::fs::read(path)?;
            let info = png::Decoder::new(bytes.as_slice())
                .read_info()?
                .info()
                .clone();
            assert_eq!((info.width, info.height), size, "{}", path.display());
            assert!(bytes.len() > 1000, "{} is too small", path.display());
        }
        assert!(training_curves(&[], &dir.path().join("none.png")).is_err());
        // A plot that cannot be written names its file and leaves no temporary.
        let blocked = dir.path().join("blocked.png");
        std::fs::create_dir(&blocked)?;
        let err = training_curves(&[stats(1, 0.7)], &blocked).unwrap_err();
        assert!(format!("{err:#}").contains("blocked.png"), "{err:#}");
        let names: Vec<_> = std::fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names.len(), 3, "{names:?}");
        // Few outputs: the count axis still reads in whole numbers.
        quantization_error(&[0.001], &errors)?;
        Ok(())
    }
}
