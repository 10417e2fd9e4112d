//! Axis scales, data ranges, tick positions and tick labels.

use crate::error::PlotError;
use crate::text;

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Logarithmic when the positive values span more than two decades
    /// (max/min > 100) and none is negative; linear otherwise. Zeros are then
    /// left out of the picture, as a log axis cannot show them.
    #[default]
    Auto,
    /// Evenly spaced values.
    Linear,
    /// Evenly spaced powers of ten; values ≤ 0 are left out.
    Log,
}

/// A resolved scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Linear,
    Log,
}

/// A resolved axis: scale and visible data range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Axis {
    pub kind: Kind,
    pub lo: f64,
    pub hi: f64,
    /// The axis counts whole things (epochs, steps): ticks only at whole
    /// numbers, as "epoch 2.5" does not exist.
    pub integer: bool,
}

/// One tick mark; minor ticks have no label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tick {
    pub value: f64,
    pub label: Option<String>,
}

/// Fraction of the data span added on each side so that curves do not touch the frame.
const PAD: f64 = 0.04;

/// Decides the scale for `values` under `scale`.
pub(crate) fn decide_kind(scale: Scale, values: &[f64]) -> Kind {
    match scale {
        Scale::Linear => Kind::Linear,
        Scale::Log => Kind::Log,
        Scale::Auto => {
            let mut min_pos = f64::INFINITY;
            let mut max_pos = 0.0f64;
            for &v in values.iter().filter(|v| v.is_finite()) {
                if v < 0.0 {
                    return Kind::Linear;
                }
                if v > 0.0 {
                    min_pos = min_pos.min(v);
                    max_pos = max_pos.max(v);
                }
            }
            if min_pos.is_finite() && max_pos / min_pos > 100.0 {
                Kind::Log
            } else {
                Kind::Linear
            }
        }
    }
}

/// Checks an explicit range given by the caller.
pub(crate) fn check_range(what: &'static str, kind: Kind, r: (f64, f64)) -> Result<(), PlotError> {
    let (lo, hi) = r;
    if !(lo.is_finite() && hi.is_finite() && lo < hi && (hi - lo).is_finite()) {
        return Err(PlotError::InvalidRange {
            what,
            lo,
            hi,
            expected: "expected finite numbers with lo < hi and a finite span",
        });
    }
    if kind == Kind::Log && lo <= 0.0 {
        return Err(PlotError::InvalidRange {
            what,
            lo,
            hi,
            expected: "a log axis needs 0 < lo < hi",
        });
    }
    Ok(())
}

impl Axis {
    /// The axis for `values` (non-finite ones ignored; non-positive ones ignored
    /// on a log axis), or `explicit` when given.
    pub(crate) fn fit(
        what: &'static str,
        kind: Kind,
        values: &[f64],
        explicit: Option<(f64, f64)>,
    ) -> Result<Axis, PlotError> {
        if let Some(r) = explicit {
            check_range(what, kind, r)?;
            return Ok(Axis {
                kind,
                lo: r.0,
                hi: r.1,
                integer: false,
            });
        }
        let usable = |v: &f64| v.is_finite() && (kind == Kind::Linear || *v > 0.0);
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for v in values.iter().filter(|v| usable(v)) {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        let (lo, hi) = match kind {
            Kind::Linear => {
                // Keep the padded span representable even for values near f64::MAX.
                let (lo, hi) = (lo.max(-f64::MAX / 4.0), hi.min(f64::MAX / 4.0));
                if !lo.is_finite() || lo > hi {
                    (0.0, 1.0)
                } else if hi - lo <= f64::EPSILON * lo.abs().max(hi.abs()) {
                    let m = 0.5 * lo + 0.5 * hi;
                    let d = if m == 0.0 { 1.0 } else { 0.1 * m.abs() };
                    (m - d, m + d)
                } else {
                    let span = hi - lo;
                    (lo - PAD * span, hi + PAD * span)
                }
            }
            Kind::Log => {
                if !lo.is_finite() {
                    (1.0, 10.0)
                } else {
                    // Exponents stay well inside f64 so that padding cannot overflow.
                    let (a, b) = (lo.log10().max(-300.0), hi.log10().min(300.0));
                    let (a, b) = if b - a < 1e-9 {
                        (a - 0.5, b + 0.5)
                    } else {
                        let span = b - a;
                        (a - PAD * span, b + PAD * span)
                    };
                    (10f64.powf(a.max(-305.0)), 10f64.powf(b.min(305.0)))
                }
            }
        };
        Ok(Axis {
            kind,
            lo,
            hi,
            integer: false,
        })
    }

    /// The same axis with ticks at whole numbers only (its `integer` field).
    pub(crate) fn integer(self, integer: bool) -> Axis {
        Axis { integer, ..self }
    }

    /// Position of `v` along the axis, 0 at `lo` and 1 at `hi`; NaN when the
    /// value cannot be shown (non-finite, or ≤ 0 on a log axis).
    pub(crate) fn frac(&self, v: f64) -> f64 {
        match self.kind {
            Kind::Linear => (v - self.lo) / (self.hi - self.lo),
            Kind::Log => {
                if v > 0.0 {
                    (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
                } else {
                    f64::NAN
                }
            }
        }
    }

    fn contains(&self, v: f64) -> bool {
        let t = self.frac(v);
        (-1e-9..=1.0 + 1e-9).contains(&t)
    }

    /// Ticks for an axis `len` pixels long. `label_extent` gives the space a
    /// label takes along the axis (its width on a horizontal axis, its height on
    /// a vertical one); labels never come closer than that plus a gap.
    pub(crate) fn ticks(&self, len: f32, label_extent: &dyn Fn(&str) -> f32) -> Vec<Tick> {
        let gap = 14.0f32;
        let mut ticks = match self.kind {
            Kind::Linear => self.linear_ticks(len, label_extent, gap),
            Kind::Log => self.log_ticks(len, label_extent, gap),
        };
        if self.integer {
            // Linear ticks are whole already; a log axis may reach below 1
            // (0.5, 0.2 …), which counts of things never take.
            ticks.retain(|t| t.value.fract() == 0.0);
        }
        ticks
    }

    fn linear_ticks(&self, len: f32, extent: &dyn Fn(&str) -> f32, gap: f32) -> Vec<Tick> {
        // Start dense and coarsen until neighbouring labels do not collide.
        let mut count = ((len / 55.0).floor() as usize).clamp(2, 10);
        loop {
            let ticks = if self.integer {
                integer_ticks(self.lo, self.hi, count)
            } else {
                linear_ticks(self.lo, self.hi, count)
            };
            let labelled: Vec<(f32, f32)> = ticks
                .iter()
                .map(|t| {
                    let pos = self.frac(t.value) as f32 * len;
                    (pos, extent(t.label.as_deref().unwrap_or("")))
                })
                .collect();
            let fits = labelled
                .windows(2)
                .all(|w| (w[1].0 - w[0].0).abs() >= 0.5 * (w[0].1 + w[1].1) + gap);
            if fits || count <= 2 {
                return ticks;
            }
            count -= 1;
        }
    }

    fn log_ticks(&self, len: f32, extent: &dyn Fn(&str) -> f32, gap: f32) -> Vec<Tick> {
        let (la, lb) = (self.lo.log10(), self.hi.log10());
        if !(la.is_finite() && lb.is_finite() && lb > la) {
            return Vec::new();
        }
        let per_decade = len as f64 / (lb - la);
        let e0 = la.floor() as i32;
        let e1 = lb.ceil() as i32;
        let mut ticks: Vec<Tick> = Vec::new();
        let decades: Vec<i32> = (e0..=e1).filter(|&k| self.contains(pow10(k))).collect();
        // One label style per axis: plain decimals when every decade is
        // moderate, powers of ten otherwise.
        let plain = la.ceil() >= -3.0 && lb.floor() <= 4.0;
        let label_of = |m: f64, k: i32| log_label(m, k, plain);
        // Room to label 2 and 5 as well: the 1→2 gap is 0.3 decade.
        let room_125 = || {
            let widest = (e0..=e1)
                .flat_map(|k| [2.0, 5.0].map(|m| extent(&label_of(m, k))))
                .fold(0.0f32, f32::max);
            0.3 * per_decade >= f64::from(widest + gap)
        };
        // "2×10⁻⁷"-style labels are too heavy: powers of ten label decades only.
        let mantissas: &[f64] =
            if decades.len() >= 2 && !(plain && decades.len() <= 4 && room_125()) {
                &[1.0]
            } else if decades.len() >= 2
                || (e0..=e1)
                    .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * pow10(k)))
                    .filter(|v| self.contains(*v))
                    .count()
                    >= 2
            {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
            };
        for k in e0..=e1 {
            for m in 1..=9 {
                let v = f64::from(m) * pow10(k);
                if !self.contains(v) {
                    continue;
                }
                let labelled = mantissas.contains(&f64::from(m));
                // Minor ticks only where they are far enough apart to read.
                if !labelled && per_decade < 40.0 {
                    continue;
                }
                ticks.push(Tick {
                    value: v,
                    label: labelled.then(|| label_of(f64::from(m), k)),
                });
            }
        }
        let n_labels = ticks.iter().filter(|t| t.label.is_some()).count();
        if n_labels < 2 {
            // Less than a decade with no round values inside: label like a linear axis.
            let mut lin = self.linear_ticks_on_log(len, extent, gap);
            lin.extend(ticks.into_iter().filter(|t| t.label.is_none()));
            lin.sort_by(|a, b| a.value.total_cmp(&b.value));
            return lin;
        }
        // Thin labels greedily so that they do not collide, keeping round
        // decades when several decades compete.
        let mut last: Option<(f32, f32)> = None;
        let step = if mantissas.len() == 1 {
            let widest = ticks
                .iter()
                .filter_map(|t| t.label.as_deref())
                .map(extent)
                .fold(0.0f32, f32::max);
            (((widest + gap) as f64 / per_decade).ceil() as i32).max(1)
        } else {
            1
        };
        for t in &mut ticks {
            let Some(label) = &t.label else { continue };
            if step > 1 {
                let k = t.value.log10().round() as i32;
                if k.rem_euclid(step) != 0 {
                    t.label = None;
                    continue;
                }
            }
            let pos = self.frac(t.value) as f32 * len;
            let w = extent(label);
            if let Some((p, lw)) = last {
                if (pos - p).abs() < 0.5 * (w + lw) + gap {
                    t.label = None;
                    continue;
                }
            }
            last = Some((pos, w));
        }
        ticks
    }

    fn linear_ticks_on_log(&self, len: f32, extent: &dyn Fn(&str) -> f32, gap: f32) -> Vec<Tick> {
        let lin = Axis {
            kind: Kind::Linear,
            ..*self
        };
        lin.linear_ticks(len, extent, gap)
            .into_iter()
            .filter(|t| t.value > 0.0)
            .collect()
    }
}

fn pow10(k: i32) -> f64 {
    10f64.powi(k)
}

/// Nice tick values ("1, 2, 2.5, 5 × 10ᵏ" steps), at most about `count` of them.
pub(crate) fn linear_ticks(lo: f64, hi: f64, count: usize) -> Vec<Tick> {
    ticks_every(lo, hi, nice_step((hi - lo) / count.max(1) as f64))
}

/// Labelled ticks at the multiples of `step` within `[lo, hi]`.
fn ticks_every(lo: f64, hi: f64, step: f64) -> Vec<Tick> {
    if step.is_nan() || step <= 0.0 || !step.is_finite() {
        return Vec::new();
    }
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    if last < first || last - first > 100 {
        return Vec::new();
    }
    let values: Vec<f64> = (first..=last).map(|k| k as f64 * step).collect();
    let labels = format_linear(&values, step);
    values
        .into_iter()
        .zip(labels)
        .map(|(value, label)| Tick {
            value,
            label: Some(label),
        })
        .collect()
}

/// Like [`linear_ticks`], but only at whole numbers: the step is at least 1
/// and never 2.5 (its multiples 2.5, 7.5 are not whole).
pub(crate) fn integer_ticks(lo: f64, hi: f64, count: usize) -> Vec<Tick> {
    let mut step = match nice_step((hi - lo) / count.max(1) as f64) {
        s if s < 1.0 => 1.0,
        2.5 => 5.0,
        s => s,
    };
    let mut ticks = ticks_every(lo, hi, step);
    // A step of 2 on 1..3 leaves the lone label "2", where the fractional
    // steps a plain axis would fall back on are not allowed: refine instead.
    while ticks.len() < 2 && step > 1.0 {
        let mag = pow10(step.log10().floor() as i32);
        step = match (step / mag).round() as i32 {
            1 => 0.5 * mag,
            2 => mag,
            _ => 2.0 * mag,
        };
        let finer = ticks_every(lo, hi, step);
        if finer.is_empty() {
            break; // too many ticks at that step
        }
        ticks = finer;
    }
    ticks
}

/// The smallest of 1, 2, 2.5, 5, 10 × 10ᵏ that is at least `raw`.
pub(crate) fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || !raw.is_finite() {
        return 0.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= raw * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

const SUPERSCRIPT: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

fn superscript(k: i32) -> String {
    let mut s = String::new();
    if k < 0 {
        s.push('⁻');
    }
    for d in k.unsigned_abs().to_string().bytes() {
        s.push(SUPERSCRIPT[usize::from(d - b'0')]);
    }
    s
}

/// Replaces ASCII hyphen-minus with a typographic minus sign.
fn minus(s: String) -> String {
    if let Some(rest) = s.strip_prefix('-') {
        format!("−{rest}")
    } else {
        s
    }
}

/// Label for `m × 10ᵏ`: plain decimals or a power of ten.
fn log_label(m: f64, k: i32, plain: bool) -> String {
    if plain {
        let decimals = (-k).max(0) as usize;
        format!("{:.*}", decimals, m * pow10(k))
    } else if m == 1.0 {
        format!("10{}", superscript(k))
    } else {
        format!("{m}×10{}", superscript(k))
    }
}

/// Labels for evenly spaced values with spacing `step`: just enough decimals
/// to tell neighbours apart, and a power-of-ten form for very large or small
/// magnitudes.
pub(crate) fn format_linear(values: &[f64], step: f64) -> Vec<String> {
    let biggest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if biggest >= 1e5 || (biggest > 0.0 && biggest < 1e-3) {
        let exp = biggest.log10().floor() as i32;
        let scale = pow10(exp);
        let decimals = decimals_for(step / scale);
        return values
            .iter()
            .map(|v| {
                let m = v / scale;
                if m.abs() < 0.5 * step / scale {
                    "0".to_string()
                } else {
                    let mant = format!("{:.*}", decimals, m);
                    if mant == "1" {
                        format!("10{}", superscript(exp))
                    } else if mant == "-1" {
                        format!("−10{}", superscript(exp))
                    } else {
                        minus(format!("{mant}×10{}", superscript(exp)))
                    }
                }
            })
            .collect();
    }
    let decimals = decimals_for(step);
    values
        .iter()
        .map(|v| {
            let s = format!("{:.*}", decimals, v);
            // "-0.0" for a value that rounds to zero reads as a bug.
            if s.trim_start_matches('-')
                .chars()
                .all(|c| c == '0' || c == '.')
            {
                s.trim_start_matches('-').to_string()
            } else {
                minus(s)
            }
        })
        .collect()
}

/// A compact label for a single value (contour levels): up to four
/// significant digits, powers of ten for very large or small magnitudes.
pub(crate) fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v == 0.0 {
            "0".into()
        } else {
            minus(format!("{v}"))
        };
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let digits = 3 - a.log10().floor() as i32;
        let s = format!("{:.*}", digits.max(0) as usize, v);
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        return minus(s);
    }
    let exp = a.log10().floor() as i32;
    let mant = v / pow10(exp);
    let m = format!("{mant:.2}");
    let m = m.trim_end_matches('0').trim_end_matches('.');
    match m {
        "1" => format!("10{}", superscript(exp)),
        "-1" => format!("−10{}", superscript(exp)),
        _ => minus(format!("{m}×10{}", superscript(exp))),
    }
}

/// Decimals needed to write multiples of `step` exactly (up to 12).
fn decimals_for(step: f64) -> usize {
    for d in 0..12 {
        let scaled = step * pow10(d as i32);
        if (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0) {
            return d;
        }
    }
    12
}

/// Extent function for labels along a horizontal axis (their width).
pub(crate) fn width_extent(size: f32) -> impl Fn(&str) -> f32 {
    move |s: &str| text::width(s, size)
}

/// Extent function for labels along a vertical axis (their height).
pub(crate) fn height_extent(size: f32) -> impl Fn(&str) -> f32 {
    move |_: &str| text::line_height(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(t: &[Tick]) -> Vec<String> {
        t.iter().filter_map(|t| t.label.clone()).collect()
    }

    #[test]
    fn auto_scale_follows_the_two_decade_rule() {
        assert_eq!(decide_kind(Scale::Auto, &[1.0, 50.0]), Kind::Linear);
        assert_eq!(decide_kind(Scale::Auto, &[0.01, 2.0]), Kind::Log);
        assert_eq!(
            decide_kind(Scale::Auto, &[0.0, 0.01, 2.0, f64::NAN]),
            Kind::Log
        );
        assert_eq!(decide_kind(Scale::Auto, &[-1.0, 0.01, 2.0]), Kind::Linear);
        assert_eq!(decide_kind(Scale::Auto, &[]), Kind::Linear);
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(1.1), 2.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.03), 0.05);
        assert_eq!(nice_step(f64::NAN), 0.0);
    }

    #[test]
    fn integer_axes_have_whole_ticks_only() {
        // Epoch axes as charts fit them: the data 1..=n, padded, on axes from
        // cramped to wide.
        for (lo, hi) in [(1, 3), (1, 10), (1, 7), (1, 1000), (1, 1), (0, 5), (1, 2)] {
            let data: Vec<f64> = (lo..=hi).map(f64::from).collect();
            let a = Axis::fit("x", Kind::Linear, &data, None)
                .unwrap()
                .integer(true);
            for len in [60.0, 150.0, 300.0, 700.0, 1500.0] {
                let t = a.ticks(len, &width_extent(12.0));
                let l = labels(&t);
                assert!(!l.is_empty(), "{lo}..{hi}, {len} px: no labels");
                // (60 px has room for one label of 1..3, as on any linear axis.)
                if hi > lo && len >= 150.0 {
                    assert!(l.len() >= 2, "{lo}..{hi}, {len} px: {l:?}");
                }
                for tick in &t {
                    assert_eq!(tick.value.fract(), 0.0, "{lo}..{hi}, {len} px: {l:?}");
                }
                for label in &l {
                    assert!(
                        label.chars().all(|c| c.is_ascii_digit()),
                        "{lo}..{hi}, {len} px: {l:?}"
                    );
                }
            }
        }
        // Without the declaration, 1..10 on a short axis gets 2.5-steps: what
        // the flag prevents.
        let a = Axis::fit("x", Kind::Linear, &[1.0, 10.0], None).unwrap();
        assert!(labels(&a.ticks(220.0, &width_extent(12.0))).contains(&"7.5".to_string()));
        // On a log axis, values below 1 are dropped rather than labelled 0.5.
        let a = Axis::fit("x", Kind::Log, &[1.0, 1000.0], None)
            .unwrap()
            .integer(true);
        let t = a.ticks(400.0, &width_extent(12.0));
        assert!(t.iter().all(|t| t.value >= 1.0 && t.value.fract() == 0.0));
        assert_eq!(labels(&t), ["1", "10", "100", "1000"]);
    }

    #[test]
    fn linear_labels_are_round_and_distinct() {
        let t = linear_ticks(0.0, 1.0, 5);
        assert_eq!(labels(&t), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let t = linear_ticks(-2.0, 2.0, 4);
        assert_eq!(labels(&t), ["−2", "−1", "0", "1", "2"]);
        let t = linear_ticks(0.0, 2e6, 4);
        // One shared exponent and precision, so labels compare at a glance.
        assert_eq!(
            labels(&t),
            ["0", "0.5×10⁶", "1.0×10⁶", "1.5×10⁶", "2.0×10⁶"]
        );
        let t = linear_ticks(0.0, 3e6, 3);
        assert_eq!(labels(&t), ["0", "10⁶", "2×10⁶", "3×10⁶"]);
    }

    #[test]
    fn log_axis_labels_decades() {
        let a = Axis {
            kind: Kind::Log,
            lo: 1e-4,
            hi: 10.0,
            integer: false,
        };
        let t = a.ticks(300.0, &height_extent(12.0));
        assert_eq!(labels(&t), ["10⁻⁴", "10⁻³", "10⁻²", "10⁻¹", "10⁰", "10¹"]);
        let a = Axis {
            kind: Kind::Log,
            lo: 1e-3,
            hi: 10.0,
            integer: false,
        };
        let t = a.ticks(300.0, &height_extent(12.0));
        assert_eq!(labels(&t), ["0.001", "0.01", "0.1", "1", "10"]);
        // A long axis over few decades also labels 2 and 5.
        let a = Axis {
            kind: Kind::Log,
            lo: 0.01,
            hi: 1.0,
            integer: false,
        };
        let t = a.ticks(500.0, &height_extent(12.0));
        assert_eq!(
            labels(&t),
            ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]
        );
        assert!(t.len() > 6, "minor ticks present");
        // A short axis thins decade labels instead of overlapping them.
        let a = Axis {
            kind: Kind::Log,
            lo: 1e-12,
            hi: 1e12,
            integer: false,
        };
        let t = a.ticks(120.0, &height_extent(12.0));
        let l = labels(&t);
        assert!(l.len() >= 2 && l.len() <= 5, "{l:?}");
    }

    #[test]
    fn narrow_log_axis_still_gets_two_labels() {
        let a = Axis {
            kind: Kind::Log,
            lo: 2.1,
            hi: 2.9,
            integer: false,
        };
        let t = a.ticks(400.0, &height_extent(12.0));
        assert!(labels(&t).len() >= 2, "{:?}", labels(&t));
        assert!(t
            .iter()
            .all(|t| t.value >= 2.1 - 1e-9 && t.value <= 2.9 + 1e-9));
    }

    #[test]
    fn single_values_are_compact() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(0.2), "0.2");
        assert_eq!(format_value(1234.5678), "1235");
        assert_eq!(format_value(-2.5), "−2.5");
        assert_eq!(format_value(2e-5), "2×10⁻⁵");
        assert_eq!(format_value(1e6), "10⁶");
        assert_eq!(format_value(0.00125), "0.00125");
    }

    #[test]
    fn fit_handles_degenerate_data() {
        let a = Axis::fit("y", Kind::Linear, &[3.0, 3.0], None).unwrap();
        assert!(a.lo < 3.0 && a.hi > 3.0);
        let a = Axis::fit("y", Kind::Linear, &[0.0], None).unwrap();
        assert_eq!((a.lo, a.hi), (-1.0, 1.0));
        let a = Axis::fit("y", Kind::Linear, &[f64::NAN], None).unwrap();
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        let a = Axis::fit("y", Kind::Log, &[-1.0, 0.0, 5.0], None).unwrap();
        assert!(a.lo > 0.0 && a.lo < 5.0 && a.hi > 5.0);
        let a = Axis::fit("y", Kind::Linear, &[-f64::MAX, f64::MAX], None).unwrap();
        assert!(a.lo.is_finite() && a.hi.is_finite() && a.lo < a.hi);
        assert!(Axis::fit("y", Kind::Log, &[], Some((0.0, 1.0))).is_err());
        assert!(Axis::fit("y", Kind::Linear, &[], Some((1.0, 1.0))).is_err());
    }
}
