//! Optimiser paths on the test functions: the behaviour the product brief
//! promises learners, the consistency of what is reported with what was
//! recorded, and the files written.

mod common;

use downhill_landscape::functions::function;
use downhill_landscape::methods::parse_methods;
use downhill_landscape::paths::{
    run_paths, write_outputs, Ending, Landscape, PathSettings, Run, Stop, Target,
};
use downhill_plot::palette_color;

fn run(function: &str, specs: &str, steps: usize) -> Landscape {
    run_paths(&PathSettings {
        function: function.into(),
        methods: parse_methods(specs).unwrap(),
        steps,
        ..Default::default()
    })
    .unwrap()
}

fn by_name<'a>(l: &'a Landscape, optimizer: &str) -> &'a Run {
    l.runs
        .iter()
        .find(|r| r.optimizer == optimizer)
        .unwrap_or_else(|| panic!("no run of {optimizer}"))
}

#[test]
fn momentum_reaches_the_tolerance_in_fewer_steps_than_plain_gd_on_a_ravine() {
    for condition in [10.0, 50.0] {
        let l = run_paths(&PathSettings {
            function: "quadratic".into(),
            condition: Some(condition),
            methods: parse_methods("sgd(lr=0.01),sgd(lr=0.01,momentum=0.9)").unwrap(),
            steps: 5000,
            ..Default::default()
        })
        .unwrap();
        let gd = l.runs[0].target_step.expect("gd reaches the tolerance");
        let momentum = l.runs[1]
            .target_step
            .expect("momentum reaches the tolerance");
        assert!(
            2 * momentum < gd,
            "κ = {condition}: momentum {momentum} steps, gd {gd}"
        );
        for r in &l.runs {
            assert_eq!(r.stop, Stop::Target);
            assert!(
                matches!(r.ending, Ending::Minimum { at: [0.0, 0.0], .. }),
                "{:?}",
                r.ending
            );
        }
    }
}

/// The first step at which |y| > 1.
fn steps_to_leave(r: &Run) -> usize {
    r.points
        .iter()
        .position(|p| p[1].abs() > 1.0)
        .unwrap_or_else(|| panic!("{} never reached |y| > 1", r.optimizer))
}

#[test]
fn plain_gd_escapes_the_saddle_much_more_slowly_than_adam() {
    // The default start (1.5, 0.001) lies next to the ridge y = 0.
    for lr in ["0.01", "0.05"] {
        let specs = format!("sgd(lr={lr}),adam(lr={lr})");
        let l = run("saddle", &specs, 5000);
        assert_eq!(l.start, [1.5, 1e-3]);
        let (gd, adam) = (steps_to_leave(&l.runs[0]), steps_to_leave(&l.runs[1]));
        assert!(gd >= 3 * adam, "lr {lr}: gd {gd} steps, adam {adam}");
        for r in &l.runs {
            assert_eq!(r.stop, Stop::Target, "{}", r.optimizer);
            let Ending::Escaped { saddle, direction } = &r.ending else {
                panic!("{}: {:?}", r.optimizer, r.ending)
            };
            assert_eq!(*saddle, [0.0, 0.0]);
            assert!(
                direction.starts_with('+') || direction.starts_with('('),
                "{direction}"
            );
        }
        assert_eq!(
            by_name(&l, &format!("sgd(lr={lr})")).ending.describe(),
            "escaped the saddle at (0, 0) along +y"
        );
    }
}

#[test]
fn a_slow_gd_is_reported_stuck_near_the_saddle() {
    let l = run("saddle", "sgd(lr=0.01)", 200);
    let r = &l.runs[0];
    assert_eq!(r.stop, Stop::StepLimit);
    assert!(
        matches!(r.ending, Ending::NearSaddle { at: [0.0, 0.0], .. }),
        "{:?}",
        r.ending
    );
    assert_eq!(r.ending.describe(), "stuck near the saddle at (0, 0)");
    assert_eq!(r.target_step, None);
}

#[test]
fn every_optimiser_ends_at_the_same_minimum_of_a_convex_function() {
    let specs = "sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),sgd(lr=0.01,momentum=0.9,nesterov=true),\
                 adam(lr=0.1),adagrad(lr=1),rmsprop(lr=0.01),nadam(lr=0.1),lbfgs,newton";
    for (f, minimum) in [("booth", [1.0, 3.0]), ("quadratic", [0.0, 0.0])] {
        let l = run(f, specs, 3000);
        assert_eq!(l.runs.len(), 9);
        for r in &l.runs {
            assert_eq!(r.stop, Stop::Target, "{f}: {}", r.optimizer);
            let Ending::Minimum {
                at,
                distance,
                reached,
            } = r.ending
            else {
                panic!("{f}: {}: {:?}", r.optimizer, r.ending)
            };
            assert_eq!(at, minimum, "{f}: {}", r.optimizer);
            assert!(reached, "{f}: {}", r.optimizer);
            assert!(distance < 1e-2, "{f}: {}: {distance}", r.optimizer);
        }
    }
}

/// The README's Rosenbrock example: momentum SGD stops within the "near"
/// radius of (1, 1) at f ≈ 2e-3, far from the 1e-6 tolerance, so it is near
/// the minimum, not at it; L-BFGS with the strong-Wolfe search meets the
/// tolerance and is at it, while plain L-BFGS (torch's default: fixed steps
/// of lr = 1, no line search) diverges, which is why the README asks for the
/// line search.
#[test]
fn only_a_run_that_met_the_tolerance_is_at_the_minimum() {
    let l = run(
        "rosenbrock",
        "sgd(lr=0.001,momentum=0.9),lbfgs(line_search_fn=strong_wolfe),lbfgs",
        500,
    );
    let plain = by_name(&l, "lbfgs");
    assert_eq!(plain.stop, Stop::Diverged);
    assert!(
        matches!(plain.ending, Ending::Diverged { .. }),
        "{:?}",
        plain.ending
    );
    let sgd = by_name(&l, "sgd(lr=0.001,momentum=0.9)");
    assert_eq!(sgd.stop, Stop::StepLimit);
    assert!(sgd.last_value() > 1e-6, "{}", sgd.last_value());
    assert!(
        matches!(
            sgd.ending,
            Ending::Minimum {
                at: [1.0, 1.0],
                reached: false,
                ..
            }
        ),
        "{:?}",
        sgd.ending
    );
    assert_eq!(sgd.ending.describe(), "near the minimum (1, 1)");

    let lbfgs = by_name(&l, "lbfgs(line_search_fn=strong_wolfe)");
    assert_eq!(lbfgs.stop, Stop::Target);
    assert!(
        matches!(lbfgs.ending, Ending::Minimum { reached: true, .. }),
        "{:?}",
        lbfgs.ending
    );
    assert_eq!(lbfgs.ending.describe(), "at the minimum (1, 1)");
}

#[test]
fn reported_numbers_agree_with_the_recorded_paths() {
    let l = run(
        "rosenbrock",
        "sgd(lr=0.001),sgd(lr=0.001,momentum=0.9),adam(lr=0.05),lbfgs(line_search_fn=strong_wolfe),newton",
        2000,
    );
    let p = function("rosenbrock", None).unwrap();
    let Target::Tolerance {
        min_value,
        tolerance,
    } = l.target
    else {
        panic!("{:?}", l.target)
    };
    assert_eq!((min_value, tolerance), (0.0, 1e-6));
    for r in &l.runs {
        assert_eq!(r.points[0], [-1.2, 1.0]);
        assert_eq!(r.points.len(), r.values.len());
        assert!(r.steps() <= 2000);
        for (x, v) in r.points.iter().zip(&r.values) {
            assert_eq!(*v, p.value(x));
        }
        let first = r
            .values
            .iter()
            .position(|v| (v - min_value).abs() <= tolerance);
        assert_eq!(r.target_step, first, "{}", r.optimizer);
        match r.stop {
            Stop::Target => assert_eq!(r.target_step, Some(r.steps())),
            Stop::StepLimit => assert_eq!(r.steps(), 2000),
            ref other => panic!("{}: {other:?}", r.optimizer),
        }
        let c = r.closest.as_ref().unwrap();
        let d: Vec<f64> = r
            .points
            .iter()
            .map(|x| (x[0] - 1.0).hypot(x[1] - 1.0))
            .collect();
        let best = d.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!((c.kind, c.at, c.distance), ("minimum", [1.0, 1.0], best));
        assert_eq!(c.step, d.iter().position(|&v| v == best).unwrap());
        assert!(r.evaluations >= r.steps(), "{}", r.optimizer);
    }
    let lbfgs = by_name(&l, "lbfgs(line_search_fn=strong_wolfe)");
    assert!(lbfgs.target_step.unwrap() <= 45, "{:?}", lbfgs.target_step);
    assert!(by_name(&l, "newton").target_step.is_some());
    // Plain gradient descent crawls along the valley.
    assert_eq!(by_name(&l, "sgd(lr=0.001)").target_step, None);
}

#[test]
fn divergence_is_detected_and_reported() {
    let l = run("rosenbrock", "sgd(lr=0.01),sgd(lr=0.001)", 300);
    let r = &l.runs[0];
    assert_eq!(r.stop, Stop::Diverged);
    assert_eq!(r.ending, Ending::Diverged { step: r.steps() });
    assert!(r.steps() < 300);
    let last = r.last();
    let outside = !last.iter().all(|v| v.is_finite())
        || !r.last_value().is_finite()
        || (last[0] - 0.0).abs() > 20.0
        || (last[1] - 1.0).abs() > 20.0;
    assert!(outside, "{last:?}");
    assert_eq!(
        r.ending.describe(),
        format!("diverged at step {}", r.steps())
    );
    assert_ne!(l.runs[1].stop, Stop::Diverged);
}

#[test]
fn small_steps_stay_in_the_local_minimum_next_to_the_start_on_rastrigin() {
    let l = run("rastrigin", "sgd(lr=0.002)", 500);
    let r = &l.runs[0];
    assert_eq!(r.target_step, None);
    let Ending::LocalMinimum { at, value } = r.ending else {
        panic!("{:?}", r.ending)
    };
    // The well next to the start (2.3, -3.1), not the global minimum at 0.
    assert!(
        (at[0] - 1.99).abs() < 0.01 && (at[1] + 2.985).abs() < 0.01,
        "{at:?}"
    );
    assert!(value > 12.0 && value < 14.0, "{value}");
    let mut g = [0.0; 2];
    function("rastrigin", None).unwrap().gradient(&at, &mut g);
    assert!(g[0].hypot(g[1]) < 1e-6, "{g:?}");
}

#[test]
fn himmelblau_paths_end_in_one_of_its_four_minima() {
    let l = run(
        "himmelblau",
        "sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),adam(lr=0.1)",
        1000,
    );
    let minima: Vec<[f64; 2]> = l
        .stationary_points
        .iter()
        .filter(|p| p.kind == "minimum")
        .map(|p| p.at)
        .collect();
    assert_eq!(minima.len(), 4);
    let mut reached = Vec::new();
    for r in &l.runs {
        let Ending::Minimum { at, .. } = r.ending else {
            panic!("{}: {:?}", r.optimizer, r.ending)
        };
        assert!(minima.contains(&at));
        reached.push(at);
    }
    // Momentum carries its path past (3, 2) into another basin.
    assert_ne!(reached[0], reached[1], "{reached:?}");
}

#[test]
fn gradient_noise_is_seeded_and_shared_by_the_optimisers() {
    let settings = |seed| PathSettings {
        function: "booth".into(),
        methods: parse_methods("sgd(lr=0.01),adam(lr=0.1)").unwrap(),
        steps: 200,
        noise: 2.0,
        seed,
        ..Default::default()
    };
    let a = run_paths(&settings(1)).unwrap();
    let b = run_paths(&settings(1)).unwrap();
    let c = run_paths(&settings(2)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.runs[0].points, c.runs[0].points);
    let exact = run("booth", "sgd(lr=0.01)", 200);
    assert_ne!(a.runs[0].points, exact.runs[0].points);
    // Noise of σ = 2 keeps plain SGD from a 1e-6 tolerance, yet near the minimum.
    let r = &a.runs[0];
    assert_eq!(r.target_step, None);
    assert!(
        (r.last()[0] - 1.0).hypot(r.last()[1] - 3.0) < 1.0,
        "{:?}",
        r.last()
    );
}

#[test]
fn defaults_follow_the_function() {
    let l = run_paths(&PathSettings {
        function: "rosenbrock".into(),
        steps: 50,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(l.start, [-1.2, 1.0]);
    assert_eq!(l.window, [[-2.0, 2.0], [-1.0, 3.0]]);
    let names: Vec<&str> = l.runs.iter().map(|r| r.optimizer.as_str()).collect();
    assert_eq!(
        names,
        [
            "sgd(lr=0.001)",
            "sgd(lr=0.001,momentum=0.9)",
            "adam(lr=0.05)",
            "lbfgs(line_search_fn=strong_wolfe)"
        ]
    );
    let moved = run_paths(&PathSettings {
        function: "rosenbrock".into(),
        start: Some([-3.0, 4.0]),
        steps: 10,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(moved.start, [-3.0, 4.0]);
    assert!(
        moved.window[0][0] < -3.0 && moved.window[1][1] > 4.0,
        "{:?}",
        moved.window
    );
}

#[test]
fn pictures_and_summaries_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let l = run(
        "himmelblau",
        "sgd(lr=0.01),sgd(lr=0.01,momentum=0.9),adam(lr=0.1)",
        300,
    );
    let files = write_outputs(&l, dir.path(), true).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "paths.png",
        "paths.svg",
        "paths.gif",
        "loss.png",
        "loss.svg",
        "paths.csv",
        "summary.json",
        "summary.md",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        assert!(dir.path().join(want).is_file(), "{want}");
    }

    let paths = common::check_png(&dir.path().join("paths.png"), 800, 600, 40, 0.7);
    let loss = common::check_png(&dir.path().join("loss.png"), 800, 600, 10, 0.97);
    for i in 0..3 {
        let c = palette_color(i);
        // Each path and each loss curve shows in its own colour.
        assert!(
            paths.count((c.0, c.1, c.2)) >= 30,
            "path {i}: {}",
            paths.count((c.0, c.1, c.2))
        );
        assert!(loss.count((c.0, c.1, c.2)) >= 30, "curve {i}");
    }
    common::check_svg(
        &dir.path().join("paths.svg"),
        &[
            "sgd(lr=0.01,momentum=0.9)",
            "adam(lr=0.1)",
            "minimum",
            "saddle point",
            "common start (0, 0)",
            "Himmelblau",
        ],
    );
    common::check_svg(
        &dir.path().join("loss.svg"),
        &["f − f_min", "tolerance 1e-6", "adam(lr=0.1)"],
    );
    let frames = common::gif_frames(&dir.path().join("paths.gif"), 800, 600);
    assert!(frames >= 50, "{frames} frames");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(json["function"], "himmelblau");
    assert_eq!(json["runs"].as_array().unwrap().len(), 3);
    for (j, r) in json["runs"].as_array().unwrap().iter().zip(&l.runs) {
        assert_eq!(j["optimizer"], r.optimizer.as_str());
        assert_eq!(j["target_step"].as_u64().map(|v| v as usize), r.target_step);
        assert_eq!(j["steps"].as_u64().unwrap() as usize, r.steps());
        assert_eq!(j["final_point"][0].as_f64().unwrap(), r.last()[0]);
        assert_eq!(j["final_point"][1].as_f64().unwrap(), r.last()[1]);
        assert_eq!(j["final_value"].as_f64().unwrap(), r.last_value());
        assert_eq!(j["ending_text"], r.ending.describe().as_str());
        assert_eq!(j["ending"]["kind"], "minimum");
        assert_eq!(
            j["closest"]["step"].as_u64().unwrap() as usize,
            r.closest.as_ref().unwrap().step
        );
    }
    assert!(
        json["runs"][0].get("points").is_none(),
        "the iterates are in paths.csv"
    );
    // paths.csv holds every iterate exactly.
    let csv = std::fs::read_to_string(dir.path().join("paths.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("optimizer,step,x,y,f"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(
        rows.len(),
        l.runs.iter().map(|r| r.points.len()).sum::<usize>()
    );
    let mut rows = rows.into_iter();
    for r in &l.runs {
        for (k, (p, v)) in r.points.iter().zip(&r.values).enumerate() {
            let row = rows.next().unwrap();
            let (name, rest) = row[1..].split_once("\",").unwrap();
            assert_eq!(name, r.optimizer);
            let f: Vec<f64> = rest.split(',').map(|x| x.parse().unwrap()).collect();
            assert_eq!(f, vec![k as f64, p[0], p[1], *v], "{row}");
        }
    }
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    for r in &l.runs {
        let row = md
            .lines()
            .find(|line| line.starts_with(&format!("| {} |", r.optimizer)))
            .unwrap_or_else(|| panic!("no row for {} in\n{md}", r.optimizer));
        assert!(row.contains(&r.ending.describe()), "{row}");
        let steps = r
            .target_step
            .map_or("not reached".to_string(), |k| k.to_string());
        assert!(row.contains(&format!("| {steps}")), "{row}");
    }
    assert!(md.contains("![paths](paths.png)"));
}

#[test]
fn the_loss_of_a_function_unbounded_below_is_drawn_linearly_with_the_escape_level() {
    let dir = tempfile::tempdir().unwrap();
    let l = run("monkey-saddle", "sgd(lr=0.02),adam(lr=0.05)", 300);
    let Target::Escape { level, .. } = l.target else {
        panic!("{:?}", l.target)
    };
    assert_eq!(level, -1.0);
    write_outputs(&l, dir.path(), false).unwrap();
    assert!(!dir.path().join("paths.gif").exists());
    common::check_svg(
        &dir.path().join("loss.svg"),
        &["f(x, y)", "escape level f = -1"],
    );
    common::check_png(&dir.path().join("paths.png"), 800, 600, 40, 0.7);
    for r in &l.runs {
        assert!(r.last_value() <= -1.0);
        assert!(r.closest.as_ref().is_some_and(|c| c.kind == "saddle"));
    }
}
