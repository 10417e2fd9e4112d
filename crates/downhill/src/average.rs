//! Averages of the weights over training, as `torch.optim.swa_utils`
//! computes them: an exponential moving average (EMA) or the plain mean of
//! stochastic weight averaging (SWA, Izmailov et al., "Averaging Weights Leads
//! to Wider Optima and Better Generalization", 2018).
//!
//! ```
//! use downhill::average::{Averaging, WeightAverage};
//!
//! let mut ema = WeightAverage::<f32>::new(Averaging::Ema { decay: 0.9 }, 2)?;
//! ema.update(&[1.0, 2.0])?; // the first update copies
//! ema.update(&[2.0, 4.0])?; // then each moves 1 − decay of the way
//! assert_eq!(ema.weights(), &[1.1, 2.2]);
//! # Ok::<(), downhill::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::optim::mechanics::{ema, Lerp};
use crate::Real;
use serde::{Deserialize, Serialize};

/// How the average weighs each update.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Averaging {
    /// `a ← lerp(a, θ, 1 − decay)`, torch's `get_ema_multi_avg_fn(decay)`.
    Ema {
        /// The decay, in [0, 1].
        decay: f64,
    },
    /// The mean of every update so far, `a ← lerp(a, θ, 1/(n + 1))`, torch's
    /// `get_swa_multi_avg_fn`.
    Swa,
}

/// A running average of a flat weight vector. The first update copies the
/// weights, as torch's `AveragedModel.update_parameters` does.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightAverage<T> {
    kind: Averaging,
    weights: Vec<T>,
    count: u64,
}

impl<T: Real> WeightAverage<T> {
    /// An empty average of `len` weights.
    pub fn new(kind: Averaging, len: usize) -> Result<Self> {
        if let Averaging::Ema { decay } = kind {
            if !(0.0..=1.0).contains(&decay) {
                return Err(crate::hyper::invalid_value(
                    "ema",
                    "decay",
                    decay,
                    "a number in [0, 1]",
                ));
            }
        }
        Ok(WeightAverage {
            kind,
            weights: vec![T::zero(); len],
            count: 0,
        })
    }

    /// Restores an average from its weights and update count.
    pub fn restore(kind: Averaging, weights: Vec<T>, count: u64) -> Result<Self> {
        let mut a = Self::new(kind, weights.len())?;
        if count > crate::optim::MAX_STEP {
            return Err(Error::State(format!(
                "an average of {count} updates; the most a state may hold is 2^53"
            )));
        }
        a.weights = weights;
        a.count = count;
        Ok(a)
    }

    /// Folds the current weights in.
    pub fn update(&mut self, params: &[T]) -> Result<()> {
        if params.len() != self.weights.len() {
            return Err(Error::Shape(format!(
                "weight average: {} weights, expected {}",
                params.len(),
                self.weights.len()
            )));
        }
        if self.count == 0 {
            self.weights.copy_from_slice(params);
        } else {
            let w = match self.kind {
                Averaging::Ema { decay } => 1.0 - decay,
                Averaging::Swa => 1.0 / (self.count as f64 + 1.0),
            };
            let w = Lerp::new(w);
            for (a, &p) in self.weights.iter_mut().zip(params) {
                *a = ema(*a, p, &w);
            }
        }
        self.count += 1;
        Ok(())
    }

    /// The averaged weights (zeros before the first update).
    pub fn weights(&self) -> &[T] {
        &self.weights
    }

    /// The averaged weights, mutably (to swap them into a model and back).
    pub fn weights_mut(&mut self) -> &mut Vec<T> {
        &mut self.weights
    }

    /// Updates so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// How it weighs updates.
    pub fn kind(&self) -> Averaging {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain recomputation from the saved weights.
    #[test]
    fn averages_match_their_definitions() {
        let snapshots: Vec<Vec<f64>> = (0..7)
            .map(|t| (0..5).map(|i| ((t * 5 + i) as f64 * 0.37).sin()).collect())
            .collect();
        let mut swa = WeightAverage::<f64>::new(Averaging::Swa, 5).unwrap();
        let mut ema = WeightAverage::<f64>::new(Averaging::Ema { decay: 0.8 }, 5).unwrap();
        for s in &snapshots {
            swa.update(s).unwrap();
            ema.update(s).unwrap();
        }
        for i in 0..5 {
            let mean = snapshots.iter().map(|s| s[i]).sum::<f64>() / 7.0;
            assert!((swa.weights()[i] - mean).abs() < 1e-14);
            let mut e = snapshots[0][i];
            for s in &snapshots[1..] {
                e = 0.8 * e + 0.2 * s[i];
            }
            assert!((ema.weights()[i] - e).abs() < 1e-14);
        }
        assert_eq!(swa.count(), 7);
        assert!(WeightAverage::<f32>::new(Averaging::Ema { decay: 1.5 }, 1).is_err());
        assert!(swa.update(&[1.0]).is_err());
    }
}
