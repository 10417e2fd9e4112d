//! The runner's own tests: it must reject what is malformed and fail what is
//! wrong, or a broken fixture would pass silently.

use super::fixture::{self, OptimFixture, ScheduleFixture};
use super::{run_optim, run_schedule};

/// A small valid /1 fixture: plain SGD, two steps, reference values computed
/// by hand (θ ← θ − 0.1·g).
fn sgd_fixture() -> serde_json::Value {
    serde_json::json!({
        "format": "downhill-optim-fixture/1",
        "name": "tiny",
        "source": "by hand",
        "optimizer": "sgd",
        "hyper": {"lr": 0.1},
        "params0": [[1.0, 2.0], [3.0]],
        "grads": [[[1.0, 1.0], [2.0]], [[0.0, 10.0], [0.0]]],
        "params": [[[0.9, 1.9], [2.8]], [[0.9, 0.9], [2.8]]]
    })
}

fn validate(v: &serde_json::Value) -> Result<Vec<Vec<usize>>, String> {
    let f: OptimFixture = fixture::parse(&v.to_string())?;
    f.validate()
}

fn run(v: &serde_json::Value) -> Result<f64, String> {
    let f: OptimFixture = fixture::parse(&v.to_string())?;
    let shapes = f.validate()?;
    run_optim::<f64>(&f, &shapes, 1e-9, 1e-12).map(|(worst, _, _)| worst)
}

fn err_of(v: &serde_json::Value) -> String {
    match validate(v) {
        Ok(_) => panic!("accepted a malformed fixture: {v}"),
        Err(e) => e,
    }
}

#[test]
fn a_valid_fixture_passes() {
    let w = run(&sgd_fixture()).unwrap();
    assert!(w < 1e-15, "{w}");
}

#[test]
fn a_wrong_value_fails_with_its_place_and_the_worst_error() {
    let mut v = sgd_fixture();
    v["params"][1][0][1] = serde_json::json!(0.95);
    let e = run(&v).unwrap_err();
    assert!(e.contains("step 1, param 0[1]"), "{e}");
    assert!(e.contains("worst relative error 5.3e-2"), "{e}");
}

#[test]
fn short_or_empty_tensors_are_malformed() {
    let mut v = sgd_fixture();
    v["params"][1][0] = serde_json::json!([0.9]);
    assert!(err_of(&v).contains("params[1][0] has 1 elements, expected 2"));
    let mut v = sgd_fixture();
    v["params"][0][1] = serde_json::json!([]);
    assert!(err_of(&v).contains("params[0][1] has 0 elements, expected 1"));
    let mut v = sgd_fixture();
    v["grads"][0][0] = serde_json::json!([1.0, 1.0, 1.0]);
    assert!(err_of(&v).contains("grads[0][0] has 3 elements"));
    let mut v = sgd_fixture();
    v["params"] = serde_json::json!([[[0.9, 1.9], [2.8]]]);
    assert!(err_of(&v).contains("params has 1 steps, grads has 2"));
    let mut v = sgd_fixture();
    v["params"][0] = serde_json::json!([[0.9, 1.9]]);
    assert!(err_of(&v).contains("params[0] has 1 tensors, expected 2"));
    let mut v = sgd_fixture();
    v["params0"][1] = serde_json::json!([]);
    assert!(err_of(&v).contains("params0[1] is empty"));
    let mut v = sgd_fixture();
    v["grads"] = serde_json::json!([]);
    v["params"] = serde_json::json!([]);
    assert!(err_of(&v).contains("no steps"));
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    let mut v = sgd_fixture();
    v["groups"] = serde_json::json!([{"params": [0], "lr": 0.2}]);
    let e = err_of(&v);
    assert!(e.contains("unknown field `lr`"), "{e}");
    let mut v = sgd_fixture();
    v["extra"] = serde_json::json!(1);
    assert!(err_of(&v).contains("unknown field `extra`"));
    let mut v = sgd_fixture();
    v["groups"] = serde_json::json!([{"params": [5], "hyper": {}}]);
    assert!(err_of(&v).contains("groups[0] names parameter 5"));
    // An unknown hyper-parameter name is the optimiser's error, at build time.
    let mut v = sgd_fixture();
    v["hyper"]["lrr"] = serde_json::json!(0.1);
    let e = run(&v).unwrap_err();
    assert!(e.contains("unknown hyper-parameter `lrr`"), "{e}");
}

#[test]
fn formats_are_checked() {
    let mut v = sgd_fixture();
    v["format"] = serde_json::json!("downhill-optim-fixture/3");
    assert!(err_of(&v).contains("unknown format `downhill-optim-fixture/3`"));
    let mut v = sgd_fixture();
    v.as_object_mut().unwrap().remove("format");
    assert!(err_of(&v).contains("missing field `format`"));
    // /1 has no shapes; /2 needs them, and a reference instead of a source.
    let mut v = sgd_fixture();
    v["shapes"] = serde_json::json!([[2], [1]]);
    assert!(err_of(&v).contains("`shapes` is not a key of downhill-optim-fixture/1"));
    let mut v = sgd_fixture();
    v["format"] = serde_json::json!("downhill-optim-fixture/2");
    v.as_object_mut().unwrap().remove("source");
    v["reference"] = serde_json::json!("by hand");
    assert!(err_of(&v).contains("needs `shapes`"));
    v["shapes"] = serde_json::json!([[2, 1], [1]]);
    assert_eq!(validate(&v).unwrap(), vec![vec![2, 1], vec![1]]);
    v["shapes"] = serde_json::json!([[3], [1]]);
    assert!(err_of(&v).contains("shapes[0] = [3] does not hold the 2 elements"));
}

#[test]
fn eval_params_are_compared() {
    // SGD evaluates at its parameters: a fixture that says otherwise fails.
    let mut v = sgd_fixture();
    v["format"] = serde_json::json!("downhill-optim-fixture/2");
    v.as_object_mut().unwrap().remove("source");
    v["reference"] = serde_json::json!("by hand");
    v["shapes"] = serde_json::json!([[2], [1]]);
    v["eval_params"] = v["params"].clone();
    let e = run(&v).unwrap_err();
    assert!(e.contains("evaluates at the training point"), "{e}");
    v["eval_params"][0] = serde_json::json!([[0.9], [2.8]]);
    assert!(err_of(&v).contains("eval_params[0][0] has 1 elements"));
}

#[test]
fn schedule_fixtures_are_checked() {
    let v = serde_json::json!({
        "format": "downhill-schedule-fixture/1", "name": "s", "source": "by hand",
        "scheduler": "steplr", "base_lr": 0.1, "hyper": {"step_size": 1, "gamma": 0.5},
        "lrs": [0.1, 0.05, 0.025]
    });
    let f: ScheduleFixture = fixture::parse(&v.to_string()).unwrap();
    f.validate().unwrap();
    assert!(run_schedule(&f).unwrap() < 1e-15);
    let mut bad = v.clone();
    bad["lrs"][2] = serde_json::json!(0.03);
    let f: ScheduleFixture = fixture::parse(&bad.to_string()).unwrap();
    assert!(run_schedule(&f).unwrap_err().contains("step 2"));
    let mut bad = v.clone();
    bad["metrics"] = serde_json::json!([1.0, 2.0, 3.0]);
    let f: ScheduleFixture = fixture::parse(&bad.to_string()).unwrap();
    assert!(f
        .validate()
        .unwrap_err()
        .contains("`metrics` belongs to reducelronplateau"));
    let mut bad = v;
    bad["format"] = serde_json::json!("downhill-schedule-fixture/0");
    let f: ScheduleFixture = fixture::parse(&bad.to_string()).unwrap();
    assert!(f.validate().unwrap_err().contains("unknown format"));
}
