//! Lookahead: slow weights that follow any optimiser's fast ones.

use super::{Flat, NonFinite, Optimizer, Param, StepOutcome, Tensors};
use crate::error::{Error, Result};
use crate::hyper::{check, Hyper, HyperMap, HyperValue};
use crate::state::{
    BufferRecord, GroupRecord, PartRecord, SavedState, StateManifest, TensorRecord, STATE_FORMAT,
};
use crate::Real;

crate::hyper_struct! {
    /// Lookahead (Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps
    /// forward, 1 step back", NeurIPS 2019) over any optimiser: the inner
    /// optimiser takes `k` fast steps, then the slow weights move a fraction
    /// `alpha` of the way to the fast ones, and the fast weights restart
    /// there.
    ///
    /// ```text
    /// every step:      θ ← inner step of θ
    /// every k steps:   φ ← φ + α·(θ − φ);   θ ← φ      (φ starts at θ₀)
    /// ```
    /// Written `lookahead(SPEC,k=5,alpha=0.5)`, around any spec, partitions
    /// included; with `k = 1` and `alpha = 1` it is the inner optimiser.
    pub struct LookaheadConfig: "lookahead" {
        /// Fast steps between synchronisations.
        k: u64 = 5; check check::at_least_one,
        /// Fraction α of the way the slow weights move, in (0, 1].
        alpha: f64 = 0.5; check alpha,
    }
}

fn alpha(a: &f64) -> std::result::Result<(), &'static str> {
    if *a > 0.0 && *a <= 1.0 {
        Ok(())
    } else {
        Err("a number in (0, 1]")
    }
}

/// An optimiser wrapped in Lookahead.
#[derive(Debug)]
pub struct Lookahead<T: Real> {
    inner: Box<dyn Optimizer<T>>,
    config: LookaheadConfig,
    starts: Vec<usize>,
    /// The slow weights φ, one per tensor (empty before the first step).
    slow: Vec<Vec<T>>,
    /// Fast steps taken.
    count: u64,
    policy: NonFinite,
}

impl<T: Real> Lookahead<T> {
    /// `inner` wrapped in Lookahead with these settings.
    pub fn new(mut inner: Box<dyn Optimizer<T>>, config: LookaheadConfig) -> Result<Self> {
        config.validate()?;
        // The wrapper screens every gradient itself, once.
        inner.set_non_finite(NonFinite::Unchecked);
        Ok(Lookahead {
            starts: super::starts(inner.sizes()),
            inner,
            config,
            slow: Vec::new(),
            count: 0,
            policy: NonFinite::default(),
        })
    }

    /// The slow weights of tensor `param` (none before the first step).
    pub fn slow(&self, param: usize) -> Option<&[T]> {
        self.slow.get(param).map(Vec::as_slice)
    }

    /// The wrapped optimiser.
    pub fn inner(&self) -> &dyn Optimizer<T> {
        &*self.inner
    }

    fn step_with(&mut self, tensors: &mut dyn Tensors<T>) {
        if self.slow.is_empty() {
            self.slow = (0..self.inner.sizes().len())
                .map(|i| tensors.get(i).0.to_vec())
                .collect();
        }
        self.inner.apply_step(tensors);
        self.count += 1;
        if self.count.is_multiple_of(self.config.k) {
            let a = T::from_f64(self.config.alpha);
            for (i, slow) in self.slow.iter_mut().enumerate() {
                if !self.inner.trains(i) {
                    continue;
                }
                let (p, _) = tensors.get(i);
                for (s, p) in slow.iter_mut().zip(p.iter_mut()) {
                    *s = *s + a * (*p - *s);
                    *p = *s;
                }
            }
        }
    }
}

impl<T: Real> Optimizer<T> for Lookahead<T> {
    fn name(&self) -> &'static str {
        "lookahead"
    }

    fn params(&self) -> &[Param] {
        self.inner.params()
    }

    fn sizes(&self) -> &[usize] {
        self.inner.sizes()
    }

    fn trains(&self, param: usize) -> bool {
        self.inner.trains(param)
    }

    fn assignment(&self, param: usize) -> Option<(&'static str, usize)> {
        self.inner.assignment(param)
    }

    fn non_finite(&self) -> NonFinite {
        self.policy
    }

    fn set_non_finite(&mut self, policy: NonFinite) {
        self.policy = policy;
    }

    fn ready(&mut self) -> Result<()> {
        if self.count >= super::MAX_STEP {
            return Err(Error::State(format!(
                "lookahead has taken {} steps, the most a state may hold is 2^53",
                self.count
            )));
        }
        self.inner.ready()
    }

    fn apply_step(&mut self, tensors: &mut dyn Tensors<T>) {
        self.step_with(tensors);
    }

    fn apply_flat(&mut self, params: &mut [T], grads: &[T]) {
        let starts = std::mem::take(&mut self.starts);
        self.step_with(&mut Flat {
            params,
            grads,
            starts: &starts,
        });
        self.starts = starts;
    }

    fn step_sparse(
        &mut self,
        _param: usize,
        _p: &mut [T],
        _rows: &[u32],
        _row_len: usize,
        _values: &[T],
    ) -> Result<StepOutcome> {
        Err(Error::Unsupported(
            "lookahead synchronises whole tensors; lazy row-sparse steps would leave its slow weights behind".into(),
        ))
    }

    fn num_groups(&self) -> usize {
        self.inner.num_groups()
    }

    fn group_params(&self, group: usize) -> &[usize] {
        self.inner.group_params(group)
    }

    fn lr(&self, group: usize) -> f64 {
        self.inner.lr(group)
    }

    fn hyper(&self, group: usize) -> HyperMap {
        self.inner.hyper(group)
    }

    fn set_hyper(&mut self, group: usize, name: &str, value: &HyperValue) -> Result<()> {
        self.inner.set_hyper(group, name, value)
    }

    fn group_state(&self, group: usize) -> Vec<(&'static str, f64)> {
        self.inner.group_state(group)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.inner.counters()
    }

    fn steps(&self, param: usize) -> u64 {
        self.inner.steps(param)
    }

    fn eval_params(&self, params: &[&[T]], out: &mut [&mut [T]]) -> Result<bool> {
        self.inner.eval_params(params, out)
    }

    fn save_state(&self) -> Result<SavedState> {
        let inner = self.inner.save_state()?;
        let mut buffers: Vec<(String, Vec<u8>)> = inner
            .buffers
            .into_iter()
            .map(|(name, bytes)| (format!("parts.0.{name}"), bytes))
            .collect();
        let mut tensors = Vec::with_capacity(self.sizes().len());
        for (i, &n) in self.sizes().iter().enumerate() {
            let mut records = Vec::new();
            if let Some(slow) = self.slow.get(i) {
                let mut bytes = Vec::new();
                T::extend_le_bytes(slow, &mut bytes);
                buffers.push((format!("{i}.slow"), bytes));
                records.push(BufferRecord {
                    name: "slow".into(),
                    shape: vec![n],
                });
            }
            tensors.push(TensorRecord {
                step: self.count,
                scalars: Default::default(),
                buffers: records,
            });
        }
        let mut manifest = StateManifest::new(
            "lookahead",
            T::NAME,
            self.params(),
            vec![GroupRecord {
                params: (0..self.sizes().len()).collect(),
                hyper: self.config.to_map(),
                scalars: Default::default(),
            }],
            tensors,
        );
        manifest.parts = vec![PartRecord {
            roles: vec!["inner".into()],
            params: (0..self.sizes().len()).collect(),
            state: inner.manifest,
        }];
        Ok(SavedState { manifest, buffers })
    }

    fn load_state(&mut self, saved: &SavedState) -> Result<()> {
        let m = &saved.manifest;
        if m.format != STATE_FORMAT {
            return Err(Error::State(format!(
                "format `{}`, expected `{STATE_FORMAT}`",
                m.format
            )));
        }
        m.expect("lookahead", T::NAME, self.params())?;
        let (Some(group), [part]) = (m.groups.first(), m.parts.as_slice()) else {
            return Err(Error::State(
                "a lookahead state holds its settings and one inner state".into(),
            ));
        };
        let mut config = LookaheadConfig::default();
        config.apply(&group.hyper)?;
        if m.tensors.len() != self.sizes().len() {
            return Err(Error::State(format!(
                "{} tensor records for {} tensors",
                m.tensors.len(),
                self.sizes().len()
            )));
        }
        let count = m.tensors.first().map_or(0, |t| t.step);
        if count > super::MAX_STEP {
            return Err(Error::State(format!(
                "lookahead claims {count} steps; the most a state may hold is 2^53"
            )));
        }
        let mut slow = Vec::new();
        if m.tensors.iter().any(|t| !t.buffers.is_empty()) {
            for (i, &n) in self.sizes().iter().enumerate() {
                let bytes = saved.buffer(&format!("{i}.slow"))?;
                if bytes.len() != n * T::BYTES {
                    return Err(Error::State(format!(
                        "buffer {i}.slow has {} bytes, expected {}",
                        bytes.len(),
                        n * T::BYTES
                    )));
                }
                let mut v = vec![T::zero(); n];
                T::read_le_bytes(bytes, &mut v);
                slow.push(v);
            }
        }
        let inner = SavedState {
            manifest: part.state.clone(),
            buffers: saved
                .buffers
                .iter()
                .filter_map(|(name, b)| {
                    name.strip_prefix("parts.0.")
                        .map(|n| (n.to_string(), b.clone()))
                })
                .collect(),
        };
        self.inner.load_state(&inner)?;
        self.config = config;
        self.slow = slow;
        self.count = count;
        Ok(())
    }
}
