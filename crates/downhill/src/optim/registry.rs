//! Every optimiser downhill offers, registered once. The CLI's listing, the
//! spec parser, the property battery, the step benchmark and the fixture
//! runner all read this table, so a new optimiser is one file and one line
//! in the `registry!` table below.

use super::partition::Partition;
use super::{
    AdEMAMix, AdaBelief, Adadelta, Adafactor, Adagrad, Adam, AdamW, Adamax, Adan, Adopt, Asgd,
    Driver, Group, Lamb, Lars, Lion, Lookahead, LookaheadConfig, Mars, Muon, NAdam, Optimizer,
    OptimizerSpec, Param, PartSpec, Prodigy, RAdam, RMSprop, Role, Rprop, Rule, ScheduleFreeAdamW,
    ScheduleFreeSgd, Sgd, Shampoo, Soap,
};
use crate::error::{Error, Result};
use crate::hyper::{Hyper, HyperInfo, HyperMap};
use crate::Real;

/// What the registry knows about an optimiser besides how to build it.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The name in specs.
    pub name: &'static str,
    /// Its paper ("Authors year").
    pub paper: &'static str,
    /// The implementation it is verified against.
    pub reference: &'static str,
    /// One line: when to reach for it.
    pub use_when: &'static str,
    /// Specs that exercise its state (the property battery and the step
    /// benchmark run each).
    pub examples: &'static [&'static str],
    /// Element-wise (one fused pass, lazy row-sparse steps) or tensor-level.
    pub elementwise: bool,
    /// Whether a step sums over every tensor first, so its groups share
    /// state (Prodigy's d).
    pub shares_groups: bool,
    /// Whether it refreshes a preconditioner by decompositions now and then
    /// (SOAP, Shampoo): such steps run `faer`, and count their failures.
    pub decomposes: bool,
    /// Its hyper-parameters with defaults and docs.
    pub describe: fn() -> Vec<HyperInfo>,
}

/// Declares the registry: `name => Rule type`, one line each.
macro_rules! registry {
    ($($name:literal => $rule:ty),* $(,)?) => {
        /// Every optimiser's name, in the order they are listed to users.
        /// (`lbfgs` is closure-based: see [`crate::lbfgs`].)
        pub const OPTIMIZERS: &[&str] = &[$($name),*];

        /// Every optimiser's [`Entry`].
        pub static REGISTRY: &[Entry] = &[$(Entry {
            name: $name,
            paper: <$rule as Rule>::PAPER,
            reference: <$rule as Rule>::REFERENCE,
            use_when: <$rule as Rule>::USE_WHEN,
            examples: <$rule as Rule>::EXAMPLES,
            elementwise: <$rule as Rule>::ELEMENTWISE,
            shares_groups: <$rule as Rule>::GATHERS,
            decomposes: <$rule as Rule>::COUNTER.is_some(),
            describe: <$rule as Hyper>::describe,
        }),*];

        /// Builds the single-rule optimiser `spec` names.
        fn make_named<T: Real>(spec: &OptimizerSpec, params: Vec<Param>) -> Result<Box<dyn Optimizer<T>>> {
            match spec.name.as_str() {
                $($name => make::<$rule, T>(spec, params),)*
                other => Err(unknown_optimizer(other)),
            }
        }
    };
}

registry! {
    "sgd" => Sgd,
    "adagrad" => Adagrad,
    "adadelta" => Adadelta,
    "rmsprop" => RMSprop,
    "adam" => Adam,
    "adamw" => AdamW,
    "adamax" => Adamax,
    "nadam" => NAdam,
    "radam" => RAdam,
    "muon" => Muon,
    "adafactor" => Adafactor,
    "lamb" => Lamb,
    "lars" => Lars,
    "lion" => Lion,
    "adabelief" => AdaBelief,
    "adan" => Adan,
    "rprop" => Rprop,
    "asgd" => Asgd,
    "schedulefree_adamw" => ScheduleFreeAdamW,
    "schedulefree_sgd" => ScheduleFreeSgd,
    "prodigy" => Prodigy,
    "ademamix" => AdEMAMix,
    "adopt" => Adopt,
    "mars" => Mars,
    "soap" => Soap,
    "shampoo" => Shampoo,
}

/// The registry entry of `name`.
pub fn entry(name: &str) -> Result<&'static Entry> {
    REGISTRY
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| unknown_optimizer(name))
}

fn make<R: Rule, T: Real>(
    spec: &OptimizerSpec,
    params: Vec<Param>,
) -> Result<Box<dyn Optimizer<T>>> {
    let mut base = R::default();
    for (k, v) in &spec.hyper {
        base.set(k, v)?;
    }
    let groups = if spec.groups.is_empty() {
        vec![Group {
            rule: base,
            params: (0..params.len()).collect(),
        }]
    } else {
        spec.groups
            .iter()
            .map(|g| {
                let mut rule = base.clone();
                for (k, v) in &g.hyper {
                    rule.set(k, v)?;
                }
                Ok(Group {
                    rule,
                    params: g.params.clone(),
                })
            })
            .collect::<Result<_>>()?
    };
    Ok(Box::new(Driver::<R, T>::with_groups(groups, params)?))
}

fn unknown_optimizer(name: &str) -> Error {
    if name == "lbfgs" {
        return Error::Unsupported(
            "lbfgs is closure-based (it evaluates the objective several times per step): use downhill::lbfgs::Lbfgs"
                .into(),
        );
    }
    Error::UnknownName {
        kind: "optimizer",
        name: name.to_string(),
        known: format!("{}, partition, lookahead", OPTIMIZERS.join(", ")),
    }
}

/// What `muon` alone means, as Keras and the Muon authors use it: Muon on
/// the hidden matrices, AdamW (torch's defaults) on everything else.
pub fn muon_alone(spec: &OptimizerSpec) -> OptimizerSpec {
    OptimizerSpec {
        name: "partition".into(),
        hyper: HyperMap::new(),
        groups: Vec::new(),
        parts: vec![
            PartSpec {
                roles: vec![Role::Hidden],
                rest: false,
                spec: spec.clone(),
            },
            PartSpec {
                roles: Vec::new(),
                rest: true,
                spec: OptimizerSpec::new("adamw"),
            },
        ],
        inner: None,
    }
}

/// Builds the optimiser a spec names over the given parameters: sizes
/// (`&[6, 3]`, each a vector), shapes (`&[vec![784, 1000], vec![1000]]`,
/// roles inferred from the shape) or [`Param`]s with their roles.
///
/// `muon` alone is [`muon_alone`]: Muon on the hidden matrices, AdamW on
/// the rest (plain Muon when every tensor is a hidden matrix).
pub fn build<T: Real>(
    spec: &OptimizerSpec,
    params: &[impl Clone + Into<Param>],
) -> Result<Box<dyn Optimizer<T>>> {
    spec.check_nesting()?;
    let params = super::to_params(params);
    if let Some(lookahead) = wrapper(spec, |inner| build::<T>(inner, &params))? {
        return Ok(lookahead);
    }
    if spec.name == "partition" || !spec.parts.is_empty() {
        return Ok(Box::new(Partition::build(spec, params)?));
    }
    if spec.name == "muon" && params.iter().any(|p| p.role != Role::Hidden) {
        if !spec.groups.is_empty() {
            return Err(Error::Unsupported(
                "muon alone trains the hidden matrices and gives the rest to adamw; for groups, write partition(hidden=muon(...),all=...)".into(),
            ));
        }
        return Ok(Box::new(Partition::build(&muon_alone(spec), params)?));
    }
    make_named(spec, params)
}

/// The rule `spec` names over every tensor, with no routing by role: what
/// a partition's part is, and what a reference fixture means by an
/// optimiser (torch's `Muon(params)` updates every tensor it is given).
pub fn build_rule<T: Real>(
    spec: &OptimizerSpec,
    params: &[impl Clone + Into<Param>],
) -> Result<Box<dyn Optimizer<T>>> {
    spec.check_nesting()?;
    let params = super::to_params(params);
    if let Some(lookahead) = wrapper(spec, |inner| build_rule::<T>(inner, &params))? {
        return Ok(lookahead);
    }
    make_named(spec, params)
}

/// `lookahead(SPEC,...)` around what `inner` builds of SPEC; `None` for any
/// other spec.
fn wrapper<T: Real>(
    spec: &OptimizerSpec,
    inner: impl FnOnce(&OptimizerSpec) -> Result<Box<dyn Optimizer<T>>>,
) -> Result<Option<Box<dyn Optimizer<T>>>> {
    if spec.name != "lookahead" {
        return Ok(None);
    }
    let Some(wrapped) = &spec.inner else {
        return Err(Error::Unsupported(
            "lookahead needs the optimizer it wraps: lookahead(adam,k=5,alpha=0.5)".into(),
        ));
    };
    let mut config = LookaheadConfig::default();
    config.apply(&spec.hyper)?;
    Ok(Some(Box::new(Lookahead::new(inner(wrapped)?, config)?)))
}

/// Checks a spec's names and hyper-parameters without any parameters.
pub(crate) fn check_spec(spec: &OptimizerSpec) -> Result<()> {
    if spec.name == "lookahead" {
        return spec.validate();
    }
    entry(&spec.name)?;
    make_named::<f32>(spec, Vec::new()).map(drop)
}

/// The hyper-parameters of the optimiser `name`, with defaults and docs.
pub fn describe(name: &str) -> Result<Vec<HyperInfo>> {
    Ok((entry(name)?.describe)())
}
