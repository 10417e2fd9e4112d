//! Convexity verdicts for every 2-D test function, and witnesses that check out.

use downhill_landscape::convexity::{check_function, ConvexitySettings};
use downhill_landscape::functions::{eigenvalues_2x2, function, FUNCTIONS};

#[test]
fn verdicts_match_the_known_facts_for_every_function() {
    let settings = ConvexitySettings::default();
    for name in FUNCTIONS {
        let report = check_function(name, None, &settings).unwrap();
        let known = function(name, None).unwrap().convex();
        assert_eq!(report.convex, known, "{name}: {}", report.verdict());
        assert_eq!((report.pairs, report.hessians), (2000, 500));
        let verdict = report.verdict();
        if known {
            assert!(
                verdict.starts_with(
                    "convex on the window (2000 pairs, 500 Hessians, smallest eigenvalue"
                ),
                "{verdict}"
            );
            assert!(report.smallest_eigenvalue > 0.0, "{name}");
        } else {
            assert!(verdict.starts_with("not convex: "), "{verdict}");
        }
    }
    for (name, convex) in [
        ("quadratic", true),
        ("booth", true),
        ("logistic", true),
        ("rosenbrock", false),
        ("himmelblau", false),
        ("saddle", false),
        ("rastrigin", false),
        ("beale", false),
        ("monkey-saddle", false),
    ] {
        assert_eq!(
            check_function(name, None, &settings).unwrap().convex,
            convex,
            "{name}"
        );
    }
}

#[test]
fn witnesses_are_real_counterexamples() {
    for name in [
        "rosenbrock",
        "beale",
        "himmelblau",
        "saddle",
        "monkey-saddle",
        "rastrigin",
    ] {
        let p = function(name, None).unwrap();
        let report = check_function(name, None, &ConvexitySettings::default()).unwrap();
        let w = report
            .jensen_witness
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no pair"));
        let z = [
            w.theta * w.x[0] + (1.0 - w.theta) * w.y[0],
            w.theta * w.x[1] + (1.0 - w.theta) * w.y[1],
        ];
        let chord = w.theta * p.value(&w.x) + (1.0 - w.theta) * p.value(&w.y);
        assert_eq!(p.value(&z), w.value_between, "{name}");
        assert_eq!(chord, w.chord, "{name}");
        assert!(
            w.value_between - w.chord > 0.0 && w.violation > 0.0,
            "{name}"
        );
        let [wx, wy] = report.window;
        for q in [w.x, w.y] {
            assert!(
                q[0] >= wx[0] && q[0] <= wx[1] && q[1] >= wy[0] && q[1] <= wy[1],
                "{name}: {q:?}"
            );
        }
        let h = report
            .hessian_witness
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no Hessian"));
        let mut m = [0.0; 4];
        p.hessian(&h.at, &mut m);
        let (lo, _) = eigenvalues_2x2(m[0], m[1], m[3]);
        assert_eq!(lo, h.eigenvalue, "{name}");
        assert!(lo < 0.0 && report.smallest_eigenvalue <= lo, "{name}");
    }
    // The saddle's Hessian is diag(2, −2) everywhere.
    let saddle = check_function("saddle", None, &ConvexitySettings::default()).unwrap();
    assert_eq!(saddle.hessian_witness.as_ref().unwrap().eigenvalue, -2.0);
    assert!(saddle.verdict().contains("negative eigenvalue -2"));
}

#[test]
fn an_ill_conditioned_bowl_is_still_convex_and_the_test_is_seeded() {
    let s = ConvexitySettings {
        pairs: 500,
        hessians: 50,
        seed: 9,
        ..Default::default()
    };
    let r = check_function("quadratic", Some(1e4), &s).unwrap();
    assert!(r.convex, "{}", r.verdict());
    assert_eq!(r.smallest_eigenvalue, 1.0);
    assert_eq!(r, check_function("quadratic", Some(1e4), &s).unwrap());
    let other = check_function(
        "rosenbrock",
        None,
        &ConvexitySettings {
            seed: 10,
            ..s.clone()
        },
    )
    .unwrap();
    assert_ne!(
        other.jensen_witness,
        check_function("rosenbrock", None, &s)
            .unwrap()
            .jensen_witness
    );
}
