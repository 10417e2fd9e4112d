//! Adafactor's two-pass step against a plain transcription of torch's
//! algorithm, on the cases that choose its paths: the update norm gathered
//! in the statistics pass (rows and columns of zero gradient included), and
//! torch's element-wise norm where the ε₁² clamp bites. Only the order of
//! the sums differs, so the two agree to rounding.

use downhill::optim::{Adafactor, Optimizer, Rule};
use downhill::Rng;

/// torch's `lerp_`: two formulas, chosen by the weight.
fn lerp(a: f64, b: f64, w: f64) -> f64 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// One matrix (m×n) through `steps` steps of `torch.optim.Adafactor`,
/// written out element by element. Returns θ and the largest RMS(U)/d seen.
fn reference(
    rule: &Adafactor,
    m: usize,
    n: usize,
    p0: &[f64],
    grads: &[Vec<f64>],
) -> (Vec<f64>, f64) {
    let (eps1, eps2) = (rule.eps.0.unwrap_or(f64::EPSILON), rule.eps.1);
    let mut p = p0.to_vec();
    let (mut r, mut c) = (vec![0.0; m], vec![0.0; n]);
    let mut worst = 0.0f64;
    for (step, g) in grads.iter().enumerate() {
        let t = (step + 1) as f64;
        let rho = rule.lr.min(1.0 / t.sqrt());
        let rms = (p.iter().map(|x| x * x).sum::<f64>() / (m * n) as f64).sqrt();
        let alpha = eps2.max(rms) * rho;
        if rule.weight_decay != 0.0 {
            p.iter_mut()
                .for_each(|x| *x *= 1.0 - rule.lr * rule.weight_decay);
        }
        let w = t.powf(rule.beta2_decay);
        for (i, ri) in r.iter_mut().enumerate() {
            let mean = (0..n).map(|j| g[i * n + j] * g[i * n + j]).sum::<f64>() / n as f64;
            *ri = lerp(*ri, mean, w);
        }
        for (j, cj) in c.iter_mut().enumerate() {
            let mean = (0..m).map(|i| g[i * n + j] * g[i * n + j]).sum::<f64>() / m as f64;
            *cj = lerp(*cj, mean, w);
        }
        let mean_r = (r.iter().sum::<f64>() / m as f64).max(eps1);
        let u: Vec<f64> = (0..m * n)
            .map(|k| {
                let v = (r[k / n] * c[k % n]) / mean_r;
                1.0 / v.max(eps1 * eps1).sqrt() * g[k]
            })
            .collect();
        let ratio =
            u.iter().map(|x| x * x).sum::<f64>().sqrt() / (((m * n) as f64).sqrt() * rule.d);
        worst = worst.max(ratio);
        let k = -alpha / ratio.max(1.0);
        for (x, u) in p.iter_mut().zip(&u) {
            *x += k * u;
        }
    }
    (p, worst)
}

/// downhill's steps on the same matrix.
fn downhill(rule: &Adafactor, m: usize, n: usize, p0: &[f64], grads: &[Vec<f64>]) -> Vec<f64> {
    let mut opt = rule.clone().build::<f64>(&[vec![m, n]]).unwrap();
    let mut p = p0.to_vec();
    for g in grads {
        opt.step(&mut [&mut p], &[g]).unwrap();
    }
    p
}

/// Gradients with heavy tails (a ratio of normals), scaled by `scale`, and
/// the rows and columns listed set to zero.
fn gradients(
    rng: &mut Rng,
    m: usize,
    n: usize,
    scale: f64,
    dead_rows: &[usize],
    dead_cols: &[usize],
) -> Vec<Vec<f64>> {
    (0..3)
        .map(|_| {
            (0..m * n)
                .map(|k| {
                    let (i, j) = (k / n, k % n);
                    if dead_rows.contains(&i) || dead_cols.contains(&j) {
                        0.0
                    } else {
                        scale * rng.normal() / (0.3 + rng.normal().abs())
                    }
                })
                .collect()
        })
        .collect()
}

/// Within 1e-12 of the operands' size: θ's start or its end, whichever is
/// larger (a step can cancel θ almost exactly, leaving only rounding).
fn assert_close(case: &str, start: &[f64], got: &[f64], want: &[f64]) {
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(start[k].abs()),
            "{case}: θ[{k}] = {a}, torch's algorithm gives {b}"
        );
    }
}

/// One matrix to step: its shape, its gradients' scale, the rows and
/// columns whose gradient is zero, and whether torch's ε₁² clamp bites.
struct Case<'a> {
    name: &'a str,
    rule: &'a Adafactor,
    m: usize,
    n: usize,
    scale: f64,
    dead_rows: &'a [usize],
    dead_cols: &'a [usize],
    clamp_bites: bool,
}

impl<'a> Case<'a> {
    fn new(name: &'a str, rule: &'a Adafactor, m: usize, n: usize) -> Self {
        Case {
            name,
            rule,
            m,
            n,
            scale: 1.0,
            dead_rows: &[],
            dead_cols: &[],
            clamp_bites: false,
        }
    }
}

#[test]
fn two_passes_agree_with_torchs_algorithm_on_every_path() {
    let mut rng = Rng::new(5);
    let base = Adafactor {
        lr: 0.05,
        ..Adafactor::default()
    };
    let clipped = Adafactor {
        d: 1.0,
        weight_decay: 0.1,
        ..base.clone()
    };
    let clamped = Adafactor {
        eps: (Some(1e-3), 1e-3),
        ..base.clone()
    };
    let cases = [
        Case::new("odd shape", &base, 37, 53),
        Case {
            dead_rows: &[0, 17, 39],
            dead_cols: &[3, 4, 69],
            ..Case::new("dead rows and columns", &base, 40, 70)
        },
        Case {
            dead_rows: &[5],
            dead_cols: &[150],
            ..Case::new("many leaves", &clipped, 600, 200)
        },
        Case {
            scale: 1e-4,
            clamp_bites: true,
            ..Case::new("clamp bites", &clamped, 30, 45)
        },
        Case::new("one column", &base, 50, 1),
    ];
    let mut clipping_seen = false;
    for case in cases {
        let Case {
            name,
            rule,
            m,
            n,
            scale,
            dead_rows: rows,
            dead_cols: cols,
            clamp_bites: bites,
        } = case;
        let p0: Vec<f64> = (0..m * n).map(|_| rng.normal()).collect();
        let grads = gradients(&mut rng, m, n, scale, rows, cols);
        let (want, worst) = reference(rule, m, n, &p0, &grads);
        clipping_seen |= worst > 1.0;
        assert_close(name, &p0, &downhill(rule, m, n, &p0, &grads), &want);
        // The case is what it claims: the clamp bites exactly where stated.
        let eps1 = rule.eps.0.unwrap_or(f64::EPSILON);
        let g = &grads[0];
        let row = |i: usize| (0..n).map(|j| g[i * n + j].powi(2)).sum::<f64>() / n as f64;
        let col = |j: usize| (0..m).map(|i| g[i * n + j].powi(2)).sum::<f64>() / m as f64;
        let mean = ((0..m).map(row).sum::<f64>() / m as f64).max(eps1);
        let bit = (0..m * n).any(|k| g[k] != 0.0 && row(k / n) * col(k % n) / mean < eps1 * eps1);
        assert_eq!(bit, bites, "{name}: does the clamp bite at step 1?");
    }
    assert!(clipping_seen, "no case exercised the update clipping");
}
