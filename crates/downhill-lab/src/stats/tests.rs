//! Reference values come from scipy 1.17.1 (numpy 2.4.6, Python 3.11),
//! printed with `repr`; the call is in the comment above each table.

use super::*;

/// Relative closeness (absolute near zero).
fn close(got: f64, want: f64, rel: f64) -> bool {
    if want == 0.0 {
        return got.abs() <= rel;
    }
    ((got - want) / want).abs() <= rel
}

#[track_caller]
fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        close(got, want, rel),
        "{what}: got {got:e}, want {want:e} (rel {:.3e})",
        ((got - want) / want).abs()
    );
}

const XS: [f64; 5] = [0.871, 0.868, 0.874, 0.869, 0.872];
const YS: [f64; 5] = [0.866, 0.867, 0.869, 0.870, 0.865];

#[test]
fn stats_mean_and_std() {
    // np.mean(xs), np.std(xs, ddof=1)
    assert_close(mean(&XS).unwrap(), 0.8708, 1e-12, "mean");
    assert_close(sample_std(&XS).unwrap(), 0.0023874672772626667, 1e-9, "std");
    assert_eq!(mean(&[]), None);
    assert_eq!(mean(&[1.0, f64::NAN]), None);
    assert_eq!(mean(&[1.0, f64::INFINITY]), None);
    assert_eq!(sample_std(&[1.0]), None);
    assert_eq!(sample_std(&[2.0, 2.0, 2.0]), Some(0.0));
    // Two-pass: no catastrophic cancellation with a large offset.
    let shifted: Vec<f64> = XS.iter().map(|x| x + 1e8).collect();
    assert_close(
        sample_std(&shifted).unwrap(),
        0.0023874672772626667,
        1e-6,
        "shifted std",
    );
}

#[test]
fn stats_t_interval_matches_scipy() {
    // m = np.mean(xs); sem = scipy.stats.sem(xs)
    // scipy.stats.t.interval(0.95, df=4, loc=m, scale=sem)
    let (lo, hi) = t_interval95(&XS).unwrap();
    assert_close(lo, 0.8678355678349334, 1e-9, "lower");
    assert_close(hi, 0.8737644321650666, 1e-9, "upper");
    assert_eq!(t_interval95(&[1.0]), None);
    assert_eq!(t_interval95(&[1.0, f64::NAN, 2.0]), None);
    assert_eq!(t_interval(&XS, 1.0), None);
    assert_eq!(t_interval95(&[3.0, 3.0]), Some((3.0, 3.0)));
    // A 99% interval is wider.
    let (lo99, hi99) = t_interval(&XS, 0.99).unwrap();
    assert!(lo99 < lo && hi99 > hi);
}

/// (p, df, scipy.stats.t.ppf(p, df))
const T_PPF: [(f64, f64, f64); 56] = [
    (0.975, 1.0, 12.706204736174694),
    (0.995, 1.0, 63.656741162871526),
    (0.9, 1.0, 3.0776835371752544),
    (0.6, 1.0, 0.32491969623290634),
    (0.025, 1.0, -12.706204736174705),
    (1e-06, 1.0, -318309.8861827435),
    (1e-12, 1.0, -318309886183.7907),
    (0.975, 2.0, 4.302652729749462),
    (0.995, 2.0, 9.924843200918287),
    (0.9, 2.0, 1.8856180831641272),
    (0.6, 2.0, 0.2886751345948128),
    (0.025, 2.0, -4.302652729749464),
    (1e-06, 2.0, -707.1057205259339),
    (1e-12, 2.0, -707106.7811854869),
    (0.975, 3.5, 2.9400886379827282),
    (0.995, 3.5, 5.085702223091256),
    (0.9, 3.5, 1.5765766051364052),
    (0.6, 3.5, 0.27326545405577973),
    (0.025, 3.5, -2.9400886379827296),
    (1e-06, 3.5, -61.04512120772062),
    (1e-12, 3.5, -3163.0306837980147),
    (0.975, 4.0, 2.7764451051977934),
    (0.995, 4.0, 4.604094871349992),
    (0.9, 4.0, 1.533206274058944),
    (0.6, 4.0, 0.2707222947075976),
    (0.025, 4.0, -2.7764451051977943),
    (1e-06, 4.0, -41.577854150450975),
    (1e-12, 4.0, -1316.0727465592565),
    (0.975, 10.0, 2.228138851986274),
    (0.995, 10.0, 3.16927267261695),
    (0.9, 10.0, 1.372183641110336),
    (0.6, 10.0, 0.2601848294920803),
    (0.025, 10.0, -2.2281388519862753),
    (1e-06, 10.0, -9.751995490940581),
    (1e-12, 10.0, -40.5320961786626),
    (0.975, 30.0, 2.0422724563012378),
    (0.995, 30.0, 2.7499956535672254),
    (0.9, 30.0, 1.3104150253913955),
    (0.6, 30.0, 0.2556053649519128),
    (0.025, 30.0, -2.042272456301238),
    (1e-06, 30.0, -5.871117120418882),
    (1e-12, 30.0, -11.397217523311413),
    (0.975, 1000.0, 1.9623390808264083),
    (0.995, 1000.0, 2.580754698065951),
    (0.9, 1000.0, 1.2823987214609247),
    (0.6, 1000.0, 0.25341451583949876),
    (0.025, 1000.0, -1.9623390808264085),
    (1e-06, 1000.0, -4.781608620458351),
    (1e-12, 1000.0, -7.124228925314409),
    (0.975, 1e6, 1.959966356814107),
    (0.995, 1e6, 2.5758342201053344),
    (0.9, 1e6, 1.281552412129939),
    (0.6, 1e6, 0.25334717053784184),
    (0.025, 1e6, -1.9599663568141072),
    (1e-06, 1e6, -4.75345234827968),
    (1e-12, 1e6, -7.034572608411255),
];

#[test]
fn stats_t_quantile_matches_scipy() {
    for &(p, df, want) in &T_PPF {
        let got = student_t_quantile(p, df).unwrap();
        assert_close(got, want, 1e-7, &format!("t.ppf({p}, {df})"));
        // And the quantile inverts our own CDF much more tightly.
        let back = student_t_cdf(got, df).unwrap();
        assert_close(back, p, 1e-11, &format!("t.cdf(t.ppf({p}, {df}))"));
    }
    // Closed forms: df = 1 is Cauchy, tan(π(p − ½)); df = 2 is
    // (2p − 1)/√(2p(1 − p)).
    for p in [0.01, 0.3, 0.7, 0.999] {
        let cauchy = (PI * (p - 0.5)).tan();
        assert_close(student_t_quantile(p, 1.0).unwrap(), cauchy, 1e-12, "df 1");
        let two = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        assert_close(student_t_quantile(p, 2.0).unwrap(), two, 1e-12, "df 2");
    }
    assert_eq!(student_t_quantile(0.5, 7.0), Some(0.0));
    assert_eq!(student_t_quantile(0.0, 7.0), Some(f64::NEG_INFINITY));
    assert_eq!(student_t_quantile(1.0, 7.0), Some(f64::INFINITY));
    assert_eq!(student_t_quantile(1.5, 7.0), None);
    assert_eq!(student_t_quantile(f64::NAN, 7.0), None);
    assert_eq!(student_t_quantile(0.9, 0.0), None);
    assert_eq!(student_t_quantile(0.9, f64::NAN), None);
    assert_close(
        student_t_quantile(0.975, f64::INFINITY).unwrap(),
        1.959963984540054,
        1e-12,
        "df inf",
    );
}

#[test]
fn stats_t_extremes() {
    // Many degrees of freedom, where the plain continued fraction loses
    // log10(df) digits to cancellation:
    // scipy.stats.t.ppf(0.975, df), scipy.stats.t.cdf(-5.0, df)
    let big = [
        (1e9, 1.959963986912325, 2.8665162019758096e-07),
        (1e12, 1.9599639845424262, 2.866515719275125e-07),
    ];
    for (df, ppf, cdf) in big {
        assert_close(student_t_quantile(0.975, df).unwrap(), ppf, 1e-12, "ppf");
        assert_close(student_t_cdf(-5.0, df).unwrap(), cdf, 1e-10, "cdf");
    }
    // Far tails of the Cauchy (df = 1), where x = df/(df + t²)
    // underflows: t.ppf(p, 1) = −cot(πp) ≈ −1/(πp).
    for p in [1e-20, 1e-100, 1e-200, 1e-300] {
        let want = -1.0 / (PI * p);
        assert_close(
            student_t_quantile(p, 1.0).unwrap(),
            want,
            1e-12,
            "cauchy tail",
        );
    }
}

/// (t, df, scipy.stats.t.cdf(t, df))
const T_CDF: [(f64, f64, f64); 35] = [
    (-40.0, 1.0, 0.007956089912025812),
    (-3.0, 1.0, 0.10241638234956672),
    (-0.5, 1.0, 0.35241638234956674),
    (0.0, 1.0, 0.5),
    (0.1, 1.0, 0.5317255174305535),
    (2.5, 1.0, 0.8788810584091566),
    (7.0, 1.0, 0.9548327646991335),
    (-40.0, 2.5, 7.09781714524669e-05),
    (-3.0, 2.5, 0.036288047774515914),
    (-0.5, 2.5, 0.3288489599348574),
    (0.0, 2.5, 0.5),
    (0.1, 2.5, 0.5360967279687552),
    (2.5, 2.5, 0.9477150184609223),
    (7.0, 2.5, 0.9947138152362043),
    (-40.0, 4.0, 1.1670081613006339e-06),
    (-3.0, 4.0, 0.019970984035859413),
    (-0.5, 4.0, 0.32166498159093165),
    (0.0, 4.0, 0.5),
    (0.1, 4.0, 0.5374220795302733),
    (2.5, 4.0, 0.966616727594006),
    (7.0, 4.0, 0.9989039350966535),
    (-40.0, 29.0, 3.173438664864671e-27),
    (-3.0, 29.0, 0.002749596066951706),
    (-0.5, 29.0, 0.3104240420968906),
    (0.0, 29.0, 0.5),
    (0.1, 29.0, 0.5394837777563131),
    (2.5, 29.0, 0.9908373278307869),
    (7.0, 29.0, 0.9999999464986423),
    (-40.0, 1000.0, 5.239426077586636e-210),
    (-3.0, 1000.0, 0.0013833545221190963),
    (-0.5, 1000.0, 0.30859254041693734),
    (0.0, 1000.0, 0.5),
    (0.1, 1000.0, 0.539817815488198),
    (2.5, 1000.0, 0.9937107160994546),
    (7.0, 1000.0, 0.9999999999976562),
];

#[test]
fn stats_t_cdf_matches_scipy() {
    for &(t, df, want) in &T_CDF {
        let got = student_t_cdf(t, df).unwrap();
        assert_close(got, want, 1e-9, &format!("t.cdf({t}, {df})"));
    }
    // Symmetry and the Cauchy closed form ½ + atan(t)/π.
    for t in [-5.0, -0.3, 0.7, 12.0] {
        let sum = student_t_cdf(t, 6.5).unwrap() + student_t_cdf(-t, 6.5).unwrap();
        assert_close(sum, 1.0, 1e-14, "symmetry");
        let cauchy = 0.5 + t.atan() / PI;
        assert_close(student_t_cdf(t, 1.0).unwrap(), cauchy, 1e-13, "cauchy");
    }
    assert_eq!(student_t_cdf(f64::INFINITY, 3.0), Some(1.0));
    assert_eq!(student_t_cdf(f64::NEG_INFINITY, 3.0), Some(0.0));
    assert_eq!(student_t_cdf(f64::NAN, 3.0), None);
    assert_eq!(student_t_cdf(1.0, -1.0), None);
}

#[test]
fn stats_normal_matches_scipy() {
    // scipy.stats.norm.cdf(z)
    let cdf = [
        (-10.0, 7.61985302416047e-24),
        (-3.0, 0.0013498980316300933),
        (-1.0, 0.15865525393145707),
        (-0.1, 0.460172162722971),
        (0.0, 0.5),
        (0.5, 0.6914624612740131),
        (1.96, 0.9750021048517795),
        (4.0, 0.9999683287581669),
    ];
    for (z, want) in cdf {
        assert_close(
            normal_cdf(z).unwrap(),
            want,
            1e-12,
            &format!("norm.cdf({z})"),
        );
    }
    // scipy.stats.norm.ppf(p)
    let ppf = [
        (1e-300, -37.0470962993612),
        (1e-10, -6.361340902404056),
        (0.025, -1.9599639845400545),
        (0.3, -0.5244005127080409),
        (0.5, 0.0),
        (0.8, 0.8416212335729143),
        (0.975, 1.959963984540054),
        (0.999999, 4.753424308817087),
    ];
    for (p, want) in ppf {
        assert_close(
            normal_quantile(p).unwrap(),
            want,
            1e-7,
            &format!("norm.ppf({p})"),
        );
    }
    assert_eq!(normal_cdf(f64::NAN), None);
    assert_eq!(normal_quantile(-0.1), None);
}

#[test]
fn stats_paired_t_test_matches_scipy() {
    // scipy.stats.ttest_rel(xs, ys)
    //   TtestResult(statistic=2.3134069792952237,
    //               pvalue=0.08172591365442938, df=4)
    // np.mean(np.subtract(xs, ys)) = 0.003400000000000003
    let r = paired_t_test(&XS, &YS).unwrap();
    assert_close(r.t, 2.3134069792952237, 1e-9, "t");
    assert_eq!(r.df, 4.0);
    assert_close(r.p_two_sided, 0.08172591365442938, 1e-9, "p");
    assert_close(r.mean_diff, 0.003400000000000003, 1e-9, "mean diff");
    // Swapping the arguments flips t and keeps p.
    let s = paired_t_test(&YS, &XS).unwrap();
    assert_close(s.t, -r.t, 1e-14, "swapped t");
    assert_close(s.p_two_sided, r.p_two_sided, 1e-14, "swapped p");
    // Zero variance of the differences, too few pairs, bad input.
    assert_eq!(paired_t_test(&[1.0, 2.0, 3.0], &[0.5, 1.5, 2.5]), None);
    assert_eq!(paired_t_test(&[1.0, 2.0], &[1.0, 2.0]), None);
    assert_eq!(paired_t_test(&[1.0], &[0.0]), None);
    assert_eq!(paired_t_test(&[1.0, 2.0], &[0.0]), None);
    assert_eq!(paired_t_test(&[1.0, f64::NAN], &[0.0, 0.0]), None);
}

/// `(i*37 % 113) - 50.25` for i = 1..=60: no zeros, no ties.
fn d60() -> Vec<f64> {
    (1..=60).map(|i| ((i * 37) % 113) as f64 - 50.25).collect()
}

#[test]
fn stats_wilcoxon_exact_matches_scipy() {
    // a = [0.912, 0.905, 0.921, 0.899, 0.915, 0.908, 0.918, 0.910]
    // b = [0.901, 0.907, 0.913, 0.902, 0.906, 0.9075, 0.914, 0.9165]
    // scipy.stats.wilcoxon(a, b)
    //   WilcoxonResult(statistic=10.0, pvalue=0.3125)  (8 distinct |d|)
    let a = [0.912, 0.905, 0.921, 0.899, 0.915, 0.908, 0.918, 0.910];
    let b = [0.901, 0.907, 0.913, 0.902, 0.906, 0.9075, 0.914, 0.9165];
    let w = wilcoxon_signed_rank(&a, &b).unwrap();
    assert_eq!(w.method, WilcoxonMethod::Exact);
    assert_eq!(w.n, 8);
    assert_eq!(w.statistic, 10.0);
    assert_close(w.p_two_sided, 0.3125, 1e-12, "p");
    assert_eq!(wilcoxon_signed_rank(&b, &a), Some(w));

    // Exact at the boundary n = 50: d = d60()[:50]
    // scipy.stats.wilcoxon(d)
    //   WilcoxonResult(statistic=482.0, pvalue=0.13549845162767582)
    let d = d60();
    let zeros = vec![0.0; 50];
    let w = wilcoxon_signed_rank(&d[..50], &zeros).unwrap();
    assert_eq!(w.method, WilcoxonMethod::Exact);
    assert_eq!(w.statistic, 482.0);
    assert_close(w.p_two_sided, 0.13549845162767582, 1e-9, "p n=50");

    // All positive: p = 2/2⁵ (scipy.stats.wilcoxon([1,2,3,4,5]) → 0.0625).
    let w = wilcoxon_signed_rank(&[1.0, 2.0, 3.0, 4.0, 5.0], &[0.0; 5]).unwrap();
    assert_eq!(w.statistic, 0.0);
    assert_close(w.p_two_sided, 0.0625, 1e-15, "all positive");
}

#[test]
fn stats_wilcoxon_ties_and_zeros_match_scipy() {
    // Ties and a zero, 10 pairs: scipy's exhaustive permutation test.
    // scipy.stats.wilcoxon([1.0, -1.0, 2.0, 3.0, -0.5, 2.0, 0.0, 4.0, 1.0, -2.0])
    //   WilcoxonResult(statistic=10.0, pvalue=0.171875)
    let d = [1.0, -1.0, 2.0, 3.0, -0.5, 2.0, 0.0, 4.0, 1.0, -2.0];
    let w = wilcoxon_signed_rank(&d, &[0.0; 10]).unwrap();
    assert_eq!(w.method, WilcoxonMethod::Permutation);
    assert_eq!(w.n, 9);
    assert_eq!(w.statistic, 10.0);
    assert_close(w.p_two_sided, 0.171875, 1e-12, "p perm");

    // a = [1, 2, 3, 4, 5, 6, 7]; b = [0.5, 2.25, 2, 3, 4, 4.5, 7]
    // scipy.stats.wilcoxon(a, b)  → statistic=1.0, pvalue=0.0625
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    let b = [0.5, 2.25, 2.0, 3.0, 4.0, 4.5, 7.0];
    let w = wilcoxon_signed_rank(&a, &b).unwrap();
    assert_eq!(w.method, WilcoxonMethod::Permutation);
    assert_eq!(w.statistic, 1.0);
    assert_close(w.p_two_sided, 0.0625, 1e-12, "p perm 7");

    // Ties and a zero, 20 pairs: normal approximation with tie
    // correction. d = [float((i*7 % 11) - 4) for i in range(1, 21)]
    // scipy.stats.wilcoxon(d)
    //   WilcoxonResult(statistic=53.0, pvalue=0.08981696271352961)
    let d: Vec<f64> = (1..=20).map(|i| ((i * 7) % 11) as f64 - 4.0).collect();
    let w = wilcoxon_signed_rank(&d, &[0.0; 20]).unwrap();
    assert_eq!(w.method, WilcoxonMethod::Normal);
    assert_eq!(w.n, 19);
    assert_eq!(w.statistic, 53.0);
    assert_close(w.p_two_sided, 0.08981696271352961, 1e-9, "p n=20");

    // 14 pairs with ties and a zero (just past the permutation range).
    // d = [float((i*5 % 9) - 3) for i in range(1, 15)]
    // scipy.stats.wilcoxon(d)
    //   WilcoxonResult(statistic=24.0, pvalue=0.13070375096314557)
    let d: Vec<f64> = (1..=14).map(|i| ((i * 5) % 9) as f64 - 3.0).collect();
    let w = wilcoxon_signed_rank(&d, &[0.0; 14]).unwrap();
    assert_eq!(w.method, WilcoxonMethod::Normal);
    assert_eq!(w.statistic, 24.0);
    assert_close(w.p_two_sided, 0.13070375096314557, 1e-9, "p n=14");
}

#[test]
fn stats_wilcoxon_large_sample_matches_scipy() {
    // d = [(i*37 % 113) - 50.25 for i in range(1, 61)]
    // scipy.stats.wilcoxon(d)
    //   WilcoxonResult(statistic=718.0, pvalue=0.14699277742428238)
    let w = wilcoxon_signed_rank(&d60(), &[0.0; 60]).unwrap();
    assert_eq!(w.method, WilcoxonMethod::Normal);
    assert_eq!(w.n, 60);
    assert_eq!(w.statistic, 718.0);
    assert_close(w.p_two_sided, 0.14699277742428238, 1e-9, "p n=60");
}

#[test]
fn stats_wilcoxon_bad_input() {
    assert_eq!(wilcoxon_signed_rank(&[], &[]), None);
    assert_eq!(wilcoxon_signed_rank(&[1.0, 2.0], &[1.0]), None);
    assert_eq!(wilcoxon_signed_rank(&[1.0, 2.0], &[1.0, 2.0]), None);
    assert_eq!(wilcoxon_signed_rank(&[1.0, f64::NAN], &[0.0, 0.0]), None);
    // One non-zero difference: p = 1 (scipy.stats.wilcoxon([1.0]) → 1.0).
    let w = wilcoxon_signed_rank(&[1.0], &[0.0]).unwrap();
    assert_eq!((w.statistic, w.p_two_sided, w.n), (0.0, 1.0, 1));
}

#[test]
fn stats_holm_by_hand() {
    // Computed in plain Python (no statsmodels):
    //   def holm(ps):
    //       m = len(ps); order = sorted(range(m), key=lambda i: ps[i])
    //       out = [0]*m; run = 0
    //       for r, i in enumerate(order):
    //           run = max(run, min(1, (m - r)*ps[i])); out[i] = run
    //       return out
    //   holm([0.01, 0.04, 0.03, 0.005, 0.2, 0.04])
    //     → [0.05, 0.12, 0.12, 0.03, 0.2, 0.12]
    //   holm([0.5, 0.6]) → [1, 1];  holm([0.02]) → [0.02]
    let got = holm(&[0.01, 0.04, 0.03, 0.005, 0.2, 0.04]);
    let want = [0.05, 0.12, 0.12, 0.03, 0.2, 0.12];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_close(*g, w, 1e-12, "holm");
    }
    assert_eq!(holm(&[0.5, 0.6]), vec![1.0, 1.0]);
    assert_eq!(holm(&[0.02]), vec![0.02]);
    assert!(holm(&[]).is_empty());
    assert!(holm(&[0.1, f64::NAN]).iter().all(|p| p.is_nan()));
    assert!(holm(&[0.1, 1.5]).iter().all(|p| p.is_nan()));
}

#[test]
fn stats_seeds_needed_matches_python() {
    // Same definition in Python with scipy 1.17.1:
    //   def seeds(diff, sd, alpha, power):
    //       delta = abs(diff)/sd; n = 2
    //       while n < ((t.ppf(1 - alpha/2, n - 1) + t.ppf(power, n - 1))/delta)**2:
    //           n += 1
    //       return n
    // (Sanity, noncentral t power at that n: 0.8006, 0.8986, 0.8031,
    // 0.8078, 0.9512, 0.7328, 0.8001 — about the target; one seed fewer
    // falls short of it except at the floor of 2.)
    let cases = [
        ((0.003, 0.004, 0.05, 0.8), 16),
        ((0.01, 0.004, 0.05, 0.9), 4),
        ((1.0, 1.0, 0.05, 0.8), 10),
        ((0.5, 1.0, 0.05, 0.8), 34),
        ((-0.5, 1.0, 0.01, 0.95), 75),
        ((10.0, 1.0, 0.05, 0.8), 2),
        ((0.1, 1.0, 0.05, 0.8), 787),
    ];
    for ((diff, sd, alpha, power), want) in cases {
        assert_eq!(
            seeds_needed(diff, sd, alpha, power),
            Some(want),
            "seeds_needed({diff}, {sd}, {alpha}, {power})"
        );
    }
    // Monotone: more noise needs more seeds, a bigger effect fewer.
    let mut last = 0;
    for sd in [0.5, 1.0, 1.5, 2.0, 4.0, 8.0] {
        let n = seeds_needed(1.0, sd, 0.05, 0.8).unwrap();
        assert!(n >= last, "not monotone in sd at {sd}");
        last = n;
    }
    let mut last = usize::MAX;
    for diff in [0.1, 0.2, 0.5, 1.0, 2.0, 5.0] {
        let n = seeds_needed(diff, 1.0, 0.05, 0.8).unwrap();
        assert!(n <= last, "not decreasing in diff at {diff}");
        last = n;
    }
    assert_eq!(seeds_needed(0.0, 1.0, 0.05, 0.8), None);
    assert_eq!(seeds_needed(1.0, 0.0, 0.05, 0.8), None);
    assert_eq!(seeds_needed(1.0, f64::NAN, 0.05, 0.8), None);
    assert_eq!(seeds_needed(1.0, 1.0, 0.0, 0.8), None);
    assert_eq!(seeds_needed(1.0, 1.0, 0.05, 1.0), None);
    assert_eq!(seeds_needed(1e-300, 1.0, 0.05, 0.8), None);
}
