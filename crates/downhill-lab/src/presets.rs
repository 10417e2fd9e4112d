//! The experiments of section 6 of the Adam paper (Kingma & Ba, 2015), as
//! comparisons that run on whatever data the user points at, plus a quick
//! demonstration on the embedded data set.
//!
//! The paper tuned every method's learning rate on a dense grid; the rates
//! below are sensible starting points, and `--tune-lr` redoes the tuning on
//! the user's data. `--epochs` scales a preset down for a quick look; the
//! defaults are the paper's.

use crate::error::LabError;
use downhill_train::TrainConfig;

/// Where Fashion-MNIST lands after `apt-get install dataset-fashion-mnist`.
pub const FASHION_MNIST: &str = "idx:/usr/share/datasets/fashion-mnist";

/// A named comparison.
#[derive(Clone, Debug)]
pub struct Preset {
    /// The name.
    pub name: &'static str,
    /// One line about it.
    pub description: &'static str,
    /// Shared settings (data, model, batch, epochs, schedule, L2).
    pub base: TrainConfig,
    /// Optimiser specs.
    pub optimizers: Vec<String>,
    /// Whether the data must be given (no default exists on disk).
    pub needs_data: Option<&'static str>,
    /// How the preset corresponds to the paper.
    pub notes: Vec<String>,
    /// Whether it tunes every optimiser's learning rate unless told not to
    /// (the Adam paper searched its step sizes; `--no-tune-lr` runs the rates
    /// listed).
    pub tune: bool,
}

/// Names of the presets.
pub const PRESETS: &[&str] = &[
    "quick",
    "modern",
    "modern-lm",
    "adam-paper-logreg",
    "adam-paper-bow",
    "adam-paper-mlp",
    "adam-paper-cnn",
];

fn specs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The preset called `name`.
pub fn preset(name: &str) -> Result<Preset, LabError> {
    let base = TrainConfig {
        batch_size: 128,
        seed: 0,
        ..TrainConfig::default()
    };
    Ok(match name {
        "quick" => Preset {
            name: "quick",
            description: "five optimizers on the embedded Fashion-MNIST subset, an MLP, about a minute",
            base: TrainConfig { data: "builtin:fashion-mnist-small".into(), model: "mlp:256".into(), epochs: 20, ..base },
            optimizers: specs(&[
                "sgd(lr=0.1)",
                "sgd(lr=0.05,momentum=0.9,nesterov=true)",
                "adagrad(lr=0.01)",
                "rmsprop(lr=0.001)",
                "adam(lr=0.001)",
            ]),
            needs_data: None,
            tune: false,
            notes: vec!["A quick look: 6,000 training and 1,000 test images of Fashion-MNIST (embedded in the binary), a 784-256-10 ReLU network, batch 128, 20 epochs.".into()],
        },
        "modern" => Preset {
            name: "modern",
            description: "the optimizers people train with in 2026 on one MLP: AdamW, Muon, SOAP, Shampoo, AdEMAMix, Lion, schedule-free AdamW, Prodigy, Adan, SGD-Nesterov",
            base: TrainConfig { data: "builtin:fashion-mnist-small".into(), model: "mlp:1000,1000".into(), epochs: 10, ..base },
            optimizers: specs(&[
                "adamw(lr=0.001,weight_decay=0.01)",
                "muon(lr=0.02)",
                "soap",
                "shampoo(lr=0.001,betas=0.9,0.999,epsilon=1e-12,weight_decay=0.00001,max_preconditioner_dim=8192,precondition_frequency=100,grafting=adam,grafting_epsilon=1e-8)",
                "ademamix(lr=0.001,alpha_warmup=4690,beta3_warmup=4690,weight_decay=0.01)",
                "lion(lr=0.0001,weight_decay=0.1)",
                "schedulefree_adamw(lr=0.0025,warmup_steps=100)",
                "prodigy",
                "adan(lr=0.001,weight_decay=0.02)",
                "sgd(lr=0.05,momentum=0.9,nesterov=true)",
            ]),
            needs_data: None,
            tune: false,
            notes: vec![
                "Each optimizer with its paper's recommended settings: AdamW at torch's defaults (Loshchilov & Hutter 2019); Muon at Jordan et al.'s rate 0.02 on the hidden matrix with AdamW on the rest; SOAP at its authors' defaults (Vyas et al. 2024: rate 0.003, betas 0.95, refresh every 10 steps, Adam on vectors); Shampoo as Distributed Shampoo's README configures it (rate 0.001, Adam grafting, refresh every 100 steps, Shi et al. 2023); AdEMAMix at its paper's α = 5 and β3 = 0.9999 with both warmed up over the whole run (4,690 steps: 10 epochs of the full Fashion-MNIST at batch 128; Pagliardini et al. 2024); Lion with a rate 10x smaller and a weight decay 10x larger than AdamW's (Chen et al. 2023); schedule-free AdamW at the package's default rate with a warm-up (Defazio et al. 2024), evaluated at its averaged point; Prodigy with no rate to set (Mishchenko & Defazio 2024); Adan at its paper's betas and weight decay (Xie et al. 2022); SGD with Nesterov momentum as the baseline.".into(),
                "An MLP 784-1000-1000-10 with ReLU, batch 128, 10 epochs, on the embedded 6,000-image Fashion-MNIST subset unless --data says otherwise. With --tune-lr every optimizer gets the same learning-rate search (Prodigy's lr multiplies its own estimate).".into(),
            ],
        },
        "modern-lm" => Preset {
            name: "modern-lm",
            description: "the modern family on a character-level transformer (4 layers, d = 128, context 128) over the embedded Shakespeare: AdamW, Muon, SOAP, Shampoo, schedule-free AdamW, Lion, Prodigy at equal steps",
            base: TrainConfig {
                data: "builtin:shakespeare".into(),
                model: "transformer:layers=4,d=128,heads=4,context=128".into(),
                batch_size: 32,
                steps: Some(600),
                eval_every: Some(60),
                ..base
            },
            optimizers: specs(&[
                "adamw(lr=0.001,betas=0.9,0.99,weight_decay=0.1)",
                "partition(hidden=muon(lr=0.02),all=adamw(lr=0.001,betas=0.9,0.99,weight_decay=0.1))",
                "partition(hidden=soap,all=adamw(lr=0.001,betas=0.9,0.99,weight_decay=0.1))",
                "shampoo(lr=0.001,betas=0.9,0.999,epsilon=1e-12,weight_decay=0.00001,max_preconditioner_dim=8192,precondition_frequency=100,grafting=adam,grafting_epsilon=1e-8)",
                "schedulefree_adamw(lr=0.0025,warmup_steps=60)",
                "lion(lr=0.0001,betas=0.95,0.98,weight_decay=1.0)",
                "prodigy",
            ]),
            needs_data: None,
            tune: false,
            notes: vec![
                "Each optimizer at its paper's recommended settings for language models: AdamW as nanoGPT trains its character-level Shakespeare (rate 1e-3, β2 = 0.99, weight decay 0.1; Karpathy 2022); Muon at rate 0.02 on the attention and MLP matrices with that AdamW on the embeddings, head and gains, Keller Jordan's routing in modded-nanogpt (Jordan et al. 2024); SOAP at its authors' defaults on the same matrices (Vyas et al. 2024) with that AdamW on the rest; Shampoo as Distributed Shampoo's README configures it, Adam grafting (Shi et al. 2023); schedule-free AdamW at the package's default rate with a warm-up over the first evaluation period, evaluated at its averaged point (Defazio et al. 2024); Lion with the paper's language-model betas (0.95, 0.98), a rate 10x smaller and a weight decay 10x larger than AdamW's (Chen et al. 2023); Prodigy with no rate to set (Mishchenko & Defazio 2024).".into(),
                "A decoder-only transformer, 4 pre-norm blocks of width 128 with 4 heads, context 128 characters, GPT-2's initialisation, on 846,222 characters of seven Shakespeare plays (embedded; the last 10% held out), batches of 32 windows (4,096 tokens), 600 steps (2.9 passes over the text), evaluated every 60 steps. Losses are in nats per character.".into(),
            ],
        },
        "adam-paper-logreg" => Preset {
            name: "adam-paper-logreg",
            description: "L2-regularised multinomial logistic regression, α/√t decay, batch 128 (paper §6.1, figure 1 left)",
            base: TrainConfig {
                data: FASHION_MNIST.into(),
                model: "logreg".into(),
                l2: 1e-4,
                schedule: Some("inversesqrtlr".into()),
                epochs: 45,
                ..base
            },
            optimizers: specs(&["adam(lr=0.001)", "sgd(lr=0.1,momentum=0.9,nesterov=true)", "adagrad(lr=0.05)"]),
            tune: true,
            needs_data: None,
            notes: vec!["Paper §6.1: multinomial logistic regression with an L2 penalty on MNIST images, mini-batches of 128, step size decayed as α/√t (here t counts epochs), Adam against SGD with Nesterov momentum and Adagrad. Default data: Fashion-MNIST.".into()],
        },
        "adam-paper-bow" => Preset {
            name: "adam-paper-bow",
            description: "logistic regression on a 10,000-word bag of words with 50% input dropout (paper §6.1, figure 1 right)",
            base: TrainConfig {
                data: String::new(),
                model: "logreg:input-dropout=0.5".into(),
                vocab_size: 10_000,
                bag_of_words: "binary".into(),
                l2: 1e-4,
                epochs: 160,
                ..base
            },
            optimizers: specs(&["adam(lr=0.001)", "adagrad(lr=0.05)", "rmsprop(lr=0.001)", "sgd(lr=0.5,momentum=0.9,nesterov=true)"]),
            tune: true,
            needs_data: Some("imdb:DIR (the aclImdb folder with train/ and test/)"),
            notes: vec!["Paper §6.1: IMDB movie reviews as bag-of-words vectors of the 10,000 most frequent words, 50% dropout on the input, logistic regression; Adam against Adagrad, RMSprop and SGD with Nesterov momentum. Sparse, skewed features: where adaptive methods shine.".into()],
        },
        "adam-paper-mlp" => Preset {
            name: "adam-paper-mlp",
            description: "two hidden layers of 1000 ReLU units with dropout, batch 128 (paper §6.2, figure 2)",
            base: TrainConfig { data: FASHION_MNIST.into(), model: "mlp:1000,1000:dropout=0.5".into(), epochs: 200, ..base },
            optimizers: specs(&[
                "adam(lr=0.001)",
                "adagrad(lr=0.01)",
                "rmsprop(lr=0.001)",
                "sgd(lr=0.05,momentum=0.9,nesterov=true)",
                "adadelta(lr=1.0)",
            ]),
            tune: true,
            needs_data: None,
            notes: vec![
                "Paper §6.2: a multi-layer network with two fully connected hidden layers of 1000 rectified linear units, dropout, mini-batches of 128; Adam against Adagrad, RMSprop, SGD with Nesterov momentum and Adadelta. Default data: Fashion-MNIST.".into(),
                // Measured on 2026-11-30 (README, "The Adam paper's figure 2"):
                // the same ten epochs with four settings.
                "The training loss is measured as trained, with dropout's noise in it, as the paper's figure plots it. Keep the tuning trials at least this preset's default (2 epochs on up to 10,000 held-out images): trials of a few dozen steps favour rates that are too large under dropout. On the embedded subset, 10 epochs, `--tune-epochs 1 --tune-limit 4000` tuned Adam to 3e-3 and it ended last (training loss 0.499); the default tuning kept 1e-3 and Adam ended first (0.380), as it did with the paper's rates untuned, and as it did without dropout even with the short trials. The paper ran 200 epochs; a short run shows the early ordering only.".into(),
            ],
        },
        "adam-paper-cnn" => Preset {
            name: "adam-paper-cnn",
            description: "c64-c64-c128-1000 with dropout (paper §6.3, figure 3)",
            base: TrainConfig { data: FASHION_MNIST.into(), model: "cnn:dropout=0.5".into(), epochs: 45, ..base },
            optimizers: specs(&["adam(lr=0.001)", "adagrad(lr=0.01)", "sgd(lr=0.01,momentum=0.9,nesterov=true)"]),
            tune: true,
            needs_data: None,
            notes: vec!["Paper §6.3: three stages of 5×5 convolutions (64, 64 and 128 filters) with 3×3 max-pooling of stride 2, a 1000-unit fully connected layer with dropout; Adam against Adagrad and SGD with Nesterov momentum. The paper used CIFAR-10 (give cifar10:DIR); the default here is Fashion-MNIST, any image IDX works.".into()],
        },
        other => {
            return Err(LabError::Invalid(format!("--preset: unknown preset `{other}` (known: {})", PRESETS.join(", "))))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid() {
        for name in PRESETS {
            let p = preset(name).unwrap();
            for o in &p.optimizers {
                let data = if p.needs_data.is_some() {
                    "imdb:/nowhere".to_string()
                } else {
                    p.base.data.clone()
                };
                TrainConfig {
                    optimizer: o.clone(),
                    data,
                    ..p.base.clone()
                }
                .validate()
                .unwrap();
            }
        }
        assert!(preset("adam-paper-rnn").is_err());
    }
}
