//! Ranking over seeds: each optimiser's held-out metric per seed, its mean
//! and 95% interval, paired verdicts against the best, and the time each
//! run took to reach a target.
//!
//! Within a seed every optimiser starts from the same weights and sees the
//! same batches, so the seeds pair the runs: a difference between two
//! optimisers is judged on the per-seed differences, which cancels the
//! share of the noise that the seed puts into both.

use super::RunResult;
use crate::stats;
use downhill_train::EpochRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The held-out number a comparison ranks by: the test accuracy for a
/// classifier, the validation loss for a language model (the held-out text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankMetric {
    /// Final accuracy on the test split, higher is better.
    TestAccuracy,
    /// Final accuracy on the validation split (data without a test split).
    ValidAccuracy,
    /// Final loss on the held-out text, lower is better.
    ValidLoss,
    /// Final training loss (data with nothing held out), lower is better.
    TrainLoss,
}

impl RankMetric {
    /// The metric of a comparison's runs: validation loss on text, else
    /// test accuracy where the runs have it, else validation accuracy, else
    /// the training loss.
    pub fn for_runs(runs: &[RunResult], text: bool) -> RankMetric {
        let any = |f: fn(&EpochRecord) -> Option<f64>| {
            runs.iter()
                .any(|r| r.history.iter().any(|h| f(h).is_some()))
        };
        if text {
            RankMetric::ValidLoss
        } else if any(|h| h.test_accuracy) {
            RankMetric::TestAccuracy
        } else if any(|h| h.valid_accuracy) {
            RankMetric::ValidAccuracy
        } else {
            RankMetric::TrainLoss
        }
    }

    /// The prefix of its fields in `summary.json` (`test_accuracy_mean`, …).
    pub fn name(self) -> &'static str {
        match self {
            RankMetric::TestAccuracy => "test_accuracy",
            RankMetric::ValidAccuracy => "valid_accuracy",
            RankMetric::ValidLoss => "valid_loss",
            RankMetric::TrainLoss => "train_loss",
        }
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, RankMetric::TestAccuracy | RankMetric::ValidAccuracy)
    }

    /// Its value in one evaluation record. A language model's held-out
    /// text is the record's validation split when one was carved, else its
    /// test split (where `text:FILE[,VALID_FILE]` puts the held-out text).
    pub fn of(self, h: &EpochRecord) -> Option<f64> {
        match self {
            RankMetric::TestAccuracy => h.test_accuracy,
            RankMetric::ValidAccuracy => h.valid_accuracy,
            RankMetric::ValidLoss => h.valid_loss.or(h.test_loss),
            RankMetric::TrainLoss => Some(h.train_loss),
        }
        .filter(|v| v.is_finite())
    }

    /// A run's final value; `None` for a run that diverged (its last
    /// figures come from before the divergence and would flatter it).
    pub fn final_of(self, r: &RunResult) -> Option<f64> {
        if r.summary.diverged.is_some() {
            return None;
        }
        r.history.last().and_then(|h| self.of(h))
    }
}

/// One optimiser's place in the ranking.
#[derive(Clone, Debug, PartialEq)]
pub struct RankEntry {
    /// The optimiser spec as given.
    pub label: String,
    /// The metric.
    pub metric: RankMetric,
    /// The seeds, in the comparison's order.
    pub seed_values: Vec<u64>,
    /// The final metric per seed; `None` where the run diverged.
    pub per_seed: Vec<Option<f64>>,
    /// Mean over seeds; `None` if any run diverged.
    pub mean: Option<f64>,
    /// Two-sided 95% Student t interval of the mean; `None` with one seed
    /// or a diverged run.
    pub ci95: Option<(f64, f64)>,
    /// Time to the target, when the comparison has one.
    pub to_target: Option<TargetTimes>,
}

impl RankEntry {
    /// Half the interval's width (the "±" of the tables).
    pub fn half_width(&self) -> Option<f64> {
        self.ci95.map(|(lo, hi)| 0.5 * (hi - lo))
    }
}

/// Numbers for JSON: non-finite ones (a target never reached) as `null`.
fn num(x: Option<f64>) -> Value {
    x.filter(|v| v.is_finite()).map_or(Value::Null, Value::from)
}

fn pair(x: Option<(f64, f64)>) -> Value {
    x.map_or(Value::Null, |(a, b)| json!([num(Some(a)), num(Some(b))]))
}

impl Serialize for RankEntry {
    /// `{"label", "seeds", "<metric>_per_seed", "<metric>_mean",
    /// "<metric>_ci95", ...}` in that order: the field names outside checks
    /// read.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let m = self.metric.name();
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("label", &self.label)?;
        o.serialize_entry("seeds", &self.per_seed.len())?;
        let per_seed: Vec<Value> = self.per_seed.iter().map(|v| num(*v)).collect();
        o.serialize_entry(&format!("{m}_per_seed"), &per_seed)?;
        o.serialize_entry(&format!("{m}_mean"), &num(self.mean))?;
        o.serialize_entry(&format!("{m}_ci95"), &pair(self.ci95))?;
        o.serialize_entry("seed_values", &self.seed_values)?;
        if let Some(t) = &self.to_target {
            for (k, v) in t.fields() {
                o.serialize_entry(&k, &v)?;
            }
        }
        o.end()
    }
}

/// Steps and seconds each seed's run took to reach the target, with their
/// medians and intervals. A run that never reached it counts as infinite,
/// as in AlgoPerf (`null` in JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetTimes {
    /// Steps per seed (infinite: not reached).
    pub steps: Vec<f64>,
    /// Seconds per seed, training and evaluation (infinite: not reached).
    pub seconds: Vec<f64>,
}

impl TargetTimes {
    /// Median seconds (infinite when fewer than half reached the target).
    pub fn median_seconds(&self) -> f64 {
        median(&self.seconds)
    }

    /// Runs that reached the target.
    pub fn reached(&self) -> usize {
        self.steps.iter().filter(|s| s.is_finite()).count()
    }

    /// Its fields in `summary.json`, in order.
    fn fields(&self) -> Vec<(String, Value)> {
        let mut o = vec![("reached_target".to_string(), json!(self.reached()))];
        for (name, xs) in [("steps", &self.steps), ("seconds", &self.seconds)] {
            o.push((
                format!("{name}_to_target_per_seed"),
                Value::Array(xs.iter().map(|v| num(Some(*v))).collect()),
            ));
            o.push((format!("{name}_to_target_median"), num(Some(median(xs)))));
            o.push((format!("{name}_to_target_ci95"), pair(median_interval(xs))));
        }
        o
    }
}

/// The median, with infinities (targets not reached) sorting last.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        let (a, b) = (v[n / 2 - 1], v[n / 2]);
        if a.is_infinite() || b.is_infinite() {
            f64::INFINITY
        } else {
            0.5 * (a + b)
        }
    }
}

/// A distribution-free interval of the median with at least 95% coverage:
/// the order statistics `[x₍ⱼ₎, x₍ₙ₊₁₋ⱼ₎]` with the largest `j` such that
/// `2 P(Binomial(n, ½) < j) ≤ 0.05`. Exists from six values on
/// (`2/2⁵ > 0.05`); `None` below. An end may be infinite (not reached).
pub fn median_interval(xs: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len();
    // P(Bin(n, ½) ≤ k) for k = 0, 1, …: cumulative binomial coefficients.
    let total = 2f64.powi(n as i32);
    let (mut coef, mut cum, mut j) = (1.0f64, 0.0f64, 0usize);
    for k in 0..n {
        cum += coef;
        if 2.0 * cum / total > 0.05 {
            break;
        }
        j = k + 1;
        coef = coef * (n - k) as f64 / (k + 1) as f64;
    }
    if j == 0 {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some((v[j - 1], v[n - j]))
}

/// Which paired test decides the verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairedTest {
    /// The paired Student t test (assumes roughly normal differences; can
    /// decide from two seeds on).
    #[default]
    T,
    /// The Wilcoxon signed-rank test (no normality assumed; with n seeds
    /// its smallest two-sided p-value is 2/2ⁿ, so it cannot reach 0.05
    /// below six seeds).
    Wilcoxon,
}

impl PairedTest {
    /// Parses `t` or `wilcoxon`.
    pub fn parse(s: &str) -> Option<PairedTest> {
        match s {
            "t" => Some(PairedTest::T),
            "wilcoxon" => Some(PairedTest::Wilcoxon),
            _ => None,
        }
    }

    /// Its name in reports.
    pub fn describe(self) -> &'static str {
        match self {
            PairedTest::T => "paired t test",
            PairedTest::Wilcoxon => "Wilcoxon signed-rank test",
        }
    }
}

/// One optimiser judged against the best of the ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The optimiser.
    pub label: String,
    /// The best one, which it is compared with.
    pub against: String,
    /// Seeds where both runs finished (the pairs tested).
    pub pairs: usize,
    /// Mean of the per-seed differences, this minus the best, in the
    /// metric's units.
    pub mean_difference: Option<f64>,
    /// The test used.
    pub test: PairedTest,
    /// Its two-sided p-value (`None`: fewer than two pairs, or no spread).
    pub p_value: Option<f64>,
    /// Holm-adjusted over all the comparisons with the best.
    pub p_holm: Option<f64>,
    /// "better", "worse" or "not distinguishable at these seeds".
    pub verdict: String,
    /// Seeds a paired t test would need to tell them apart at the observed
    /// mean difference and spread (α = 0.05, power 0.8).
    pub seeds_needed: Option<usize>,
}

/// Family-wise level of the verdicts.
pub const ALPHA: f64 = 0.05;

/// Ranks the runs (best first) by their mean final metric; a diverged
/// optimiser has no mean and ranks after every other. With `timed`, each
/// entry carries its runs' times to the target (their `reached`).
pub fn rank(
    runs: &[RunResult],
    labels: &[String],
    seeds: &[u64],
    metric: RankMetric,
    timed: bool,
) -> Vec<RankEntry> {
    let mut entries: Vec<RankEntry> = labels
        .iter()
        .map(|label| {
            let per_seed: Vec<Option<f64>> = seeds
                .iter()
                .map(|&s| {
                    runs.iter()
                        .find(|r| &r.label == label && r.seed == s)
                        .and_then(|r| metric.final_of(r))
                })
                .collect();
            let all: Option<Vec<f64>> = per_seed.iter().copied().collect();
            RankEntry {
                label: label.clone(),
                metric,
                seed_values: seeds.to_vec(),
                mean: all.as_deref().and_then(stats::mean),
                ci95: all.as_deref().and_then(stats::t_interval95),
                per_seed,
                to_target: timed.then(|| target_times(runs, label, seeds)),
            }
        })
        .collect();
    let sign = if metric.higher_is_better() { -1.0 } else { 1.0 };
    // Stable: equal means keep the order given.
    entries.sort_by(|a, b| match (a.mean, b.mean) {
        (Some(x), Some(y)) => (sign * x).total_cmp(&(sign * y)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    entries
}

/// Each optimiser after the first against the first (the best), with the
/// chosen paired test over the seeds where both finished, Holm-corrected.
pub fn verdicts(ranking: &[RankEntry], test: PairedTest) -> Vec<Verdict> {
    let Some(best) = ranking.first() else {
        return Vec::new();
    };
    let metric = best.metric;
    let mut out: Vec<Verdict> = ranking[1..]
        .iter()
        .map(|e| {
            let (a, b): (Vec<f64>, Vec<f64>) = e
                .per_seed
                .iter()
                .zip(&best.per_seed)
                .filter_map(|(x, y)| Some((((*x)?), (*y)?)))
                .unzip();
            let diffs: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
            let p = match test {
                PairedTest::T => stats::paired_t_test(&a, &b).map(|t| t.p_two_sided),
                PairedTest::Wilcoxon => stats::wilcoxon_signed_rank(&a, &b).map(|w| w.p_two_sided),
            };
            let mean_difference = stats::mean(&diffs);
            let seeds_needed = match (mean_difference, stats::sample_std(&diffs)) {
                (Some(m), Some(sd)) => stats::seeds_needed(m, sd, ALPHA, 0.8),
                _ => None,
            };
            Verdict {
                label: e.label.clone(),
                against: best.label.clone(),
                pairs: a.len(),
                mean_difference,
                test,
                p_value: p,
                p_holm: None,
                verdict: String::new(),
                seeds_needed,
            }
        })
        .collect();
    // Holm over the tests that produced a p-value.
    let tested: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].p_value.is_some())
        .collect();
    let ps: Vec<f64> = tested
        .iter()
        .map(|&i| out[i].p_value.unwrap_or(1.0))
        .collect();
    for (k, p) in stats::holm(&ps).into_iter().enumerate() {
        out[tested[k]].p_holm = Some(p);
    }
    for v in &mut out {
        let better = v
            .mean_difference
            .is_some_and(|d| (d > 0.0) == metric.higher_is_better());
        v.verdict = match v.p_holm {
            Some(p) if p <= ALPHA && better => "better".into(),
            Some(p) if p <= ALPHA => "worse".into(),
            _ => "not distinguishable at these seeds".into(),
        };
    }
    out
}

/// What a target is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetMetric {
    /// Held-out accuracy at least the value (`--target-accuracy`).
    Accuracy,
    /// Held-out loss at most the value (`--target-loss`).
    Loss,
    /// Training loss at most the value: the default when no target is
    /// given (the highest final training loss, the level every run reached).
    TrainLoss,
}

/// A level each run is timed to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// What is measured.
    pub metric: TargetMetric,
    /// The level.
    pub value: f64,
}

impl Target {
    /// Whether an evaluation reached it. Held-out figures are the
    /// validation split's where there is one, else the test split's.
    pub fn reached(&self, h: &EpochRecord) -> bool {
        let v = match self.metric {
            TargetMetric::Accuracy => h.valid_accuracy.or(h.test_accuracy),
            TargetMetric::Loss => h.valid_loss.or(h.test_loss),
            TargetMetric::TrainLoss => Some(h.train_loss),
        };
        v.is_some_and(|v| match self.metric {
            TargetMetric::Accuracy => v >= self.value,
            _ => v <= self.value,
        })
    }

    /// Words for reports ("held-out accuracy ≥ 0.85").
    pub fn describe(&self) -> String {
        match self.metric {
            TargetMetric::Accuracy => format!("held-out accuracy ≥ {}", self.value),
            TargetMetric::Loss => format!("held-out loss ≤ {}", self.value),
            TargetMetric::TrainLoss => format!("training loss ≤ {:.4}", self.value),
        }
    }
}

/// When a run first reached the target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reached {
    /// The evaluation's number (the epoch, or the period in a run by steps).
    pub epoch: usize,
    /// Optimiser steps taken by then.
    pub step: u64,
    /// Seconds of training and evaluation by then.
    pub seconds: f64,
}

/// The first evaluation of `history` that reached `target`.
pub fn time_to_target(history: &[EpochRecord], target: &Target) -> Option<Reached> {
    let mut seconds = 0.0;
    for h in history {
        seconds += h.seconds;
        if target.reached(h) {
            return Some(Reached {
                epoch: h.epoch,
                step: h.step,
                seconds,
            });
        }
    }
    None
}

/// The times of every seed's run of `label` (infinite where the target
/// was not reached or the run diverged first).
fn target_times(runs: &[RunResult], label: &str, seeds: &[u64]) -> TargetTimes {
    let mut t = TargetTimes {
        steps: Vec::new(),
        seconds: Vec::new(),
    };
    for &s in seeds {
        let r = runs
            .iter()
            .find(|r| r.label == label && r.seed == s)
            .and_then(|r| r.reached);
        t.steps.push(r.map_or(f64::INFINITY, |r| r.step as f64));
        t.seconds.push(r.map_or(f64::INFINITY, |r| r.seconds));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_treat_unreached_targets_as_infinite() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[1.0, f64::INFINITY, 2.0]), 2.0);
        assert_eq!(median(&[1.0, f64::INFINITY]), f64::INFINITY);
        assert_eq!(median(&[f64::INFINITY, f64::INFINITY, 5.0]), f64::INFINITY);
    }

    #[test]
    fn the_median_interval_uses_order_statistics_with_95_percent_coverage() {
        // Five values cannot give 95%: [min, max] covers 1 − 2/32 = 93.75%.
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        // Six: [x(1), x(6)] covers 1 − 2/64 = 96.9%.
        assert_eq!(
            median_interval(&[6.0, 2.0, 3.0, 4.0, 5.0, 1.0]),
            Some((1.0, 6.0))
        );
        // Nine: P(Bin(9,½) ≤ 1) = 10/512, doubled 0.039 ≤ 0.05; ≤ 2 gives
        // 46/512, doubled 0.18: j = 2, so [x(2), x(8)].
        let xs: Vec<f64> = (1..=9).map(f64::from).collect();
        assert_eq!(median_interval(&xs), Some((2.0, 8.0)));
        // Twenty: scipy.stats.binom.cdf(5, 20, 0.5) = 0.0207, doubled 0.041;
        // cdf(6) = 0.0577: j = 6, so [x(6), x(15)].
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(median_interval(&xs), Some((6.0, 15.0)));
    }

    fn entry(label: &str, per_seed: &[Option<f64>]) -> RankEntry {
        let all: Option<Vec<f64>> = per_seed.iter().copied().collect();
        RankEntry {
            label: label.into(),
            metric: RankMetric::TestAccuracy,
            seed_values: (0..per_seed.len() as u64).collect(),
            per_seed: per_seed.to_vec(),
            mean: all.as_deref().and_then(stats::mean),
            ci95: all.as_deref().and_then(stats::t_interval95),
            to_target: None,
        }
    }

    #[test]
    fn verdicts_pair_the_seeds_and_correct_for_several_comparisons() {
        let best = entry("a", &[Some(0.90), Some(0.91), Some(0.89), Some(0.90)]);
        // Lower on every seed by 0.05 ± 0.01: clearly worse.
        let worse = entry("b", &[Some(0.85), Some(0.855), Some(0.845), Some(0.86)]);
        // Crossing the best on the seeds: nothing to tell.
        let close = entry("c", &[Some(0.91), Some(0.89), Some(0.895), Some(0.90)]);
        let diverged = entry("d", &[Some(0.9), None, Some(0.9), Some(0.9)]);
        let v = verdicts(&[best, worse, close, diverged], PairedTest::T);
        assert_eq!(v.len(), 3);
        // scipy.stats.ttest_rel([0.85,0.855,0.845,0.86],[0.90,0.91,0.89,0.90])
        // (scipy 1.17.1): statistic −14.717336715588184, pvalue
        // 0.0006804740832189663.
        let p = v[0].p_value.unwrap();
        assert!((p - 0.0006804740832189663).abs() < 1e-12 * 0.00068, "{p}");
        assert_eq!(v[0].verdict, "worse");
        assert!(v[0].mean_difference.unwrap() < 0.0);
        assert_eq!(v[1].verdict, "not distinguishable at these seeds");
        assert!(v[1].seeds_needed.unwrap() > 4);
        // The diverged seed drops from its pairs: three remain.
        assert_eq!(v[2].pairs, 3);
        // Holm over three: the smallest p times 3 (capped, monotone).
        let ps: Vec<f64> = v.iter().map(|x| x.p_value.unwrap_or(1.0)).collect();
        let tested: Vec<f64> = v.iter().filter_map(|x| x.p_value).collect();
        let holm = stats::holm(&tested);
        let mut k = 0;
        for x in &v {
            if x.p_value.is_some() {
                assert_eq!(x.p_holm, Some(holm[k]));
                k += 1;
            }
        }
        assert!((v[0].p_holm.unwrap() - (ps[0] * tested.len() as f64).min(1.0)).abs() < 1e-15);
    }

    #[test]
    fn ranking_puts_a_diverged_optimiser_last_and_serialises_the_contract_fields() {
        let e = entry(
            "adam",
            &[
                Some(0.871),
                Some(0.868),
                Some(0.874),
                Some(0.869),
                Some(0.872),
            ],
        );
        let d = entry(
            "sgd",
            &[Some(0.95), None, Some(0.95), Some(0.95), Some(0.95)],
        );
        let json = serde_json::to_value(&e).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for k in [
            "label",
            "seeds",
            "test_accuracy_per_seed",
            "test_accuracy_mean",
            "test_accuracy_ci95",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert_eq!(json["seeds"], 5);
        assert!((json["test_accuracy_mean"].as_f64().unwrap() - 0.8708).abs() < 1e-12);
        // The example: scipy.stats.t.interval(0.95, 4,
        // loc=mean, scale=scipy.stats.sem(x)) for these five values
        // (scipy 1.17.1) is (0.8678355678349334, 0.8737644321650666).
        let ci = &json["test_accuracy_ci95"];
        assert!(
            (ci[0].as_f64().unwrap() - 0.8678355678349334).abs() < 1e-12,
            "{ci}"
        );
        assert!(
            (ci[1].as_f64().unwrap() - 0.8737644321650666).abs() < 1e-12,
            "{ci}"
        );
        let dj = serde_json::to_value(&d).unwrap();
        assert!(dj["test_accuracy_mean"].is_null());
        assert!(dj["test_accuracy_per_seed"][1].is_null());
        // A language model's loss: its own names, lower first.
        let mut l = entry("lm", &[Some(2.1), Some(2.2)]);
        l.metric = RankMetric::ValidLoss;
        let lj = serde_json::to_value(&l).unwrap();
        assert!(lj.get("valid_loss_ci95").is_some() && lj.get("test_accuracy_mean").is_none());
    }
}
