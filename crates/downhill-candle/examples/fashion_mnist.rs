//! A candle-nn MLP (784-512-256-10, ReLU) trained on Fashion-MNIST with any
//! downhill optimiser spec, through `downhill_candle::CandleOptimizer`.
//!
//! ```text
//! cargo run --release -p downhill-candle --example fashion_mnist -- \
//!     [--data builtin:fashion-mnist-small | --data idx:DIR] \
//!     [--optimizer SPEC | --optimizer candle_nn::AdamW] [--schedule SPEC] \
//!     [--epochs 10] [--batch-size 128] [--seed 0] [--clip-norm F]
//! ```
//!
//! The data are read by `downhill-data` (the embedded 6,000/1,000-image
//! subset by default, or the IDX files of the full set), pixels scaled to
//! [0, 1]; the initial weights and the epoch order are those of `downhill
//! train --model mlp:512,256 --seed SEED` (`downhill_nn::Network::new`,
//! `downhill_train::epoch_order`), so the run sits next to `downhill train`
//! on the same model, data and starting point. `--optimizer candle_nn::AdamW` trains with candle's own AdamW
//! (`ParamsAdamW::default()`, the same as `adamw(weight_decay=0.01)`), for
//! comparison. Each epoch prints the training loss, the test loss and
//! accuracy, the learning rate, and the mean time of a whole training step
//! (forward, backward, optimiser).

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use downhill_candle::{CandleOptimizer, Config};
use std::time::Instant;

/// The command line.
struct Args {
    data: String,
    optimizer: String,
    schedule: Option<String>,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    clip_norm: Option<f64>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: "builtin:fashion-mnist-small".into(),
        optimizer: "adam".into(),
        schedule: None,
        epochs: 10,
        batch_size: 128,
        seed: 0,
        clip_norm: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String, what: &str| -> Result<f64, String> {
            v.parse()
                .map_err(|_| format!("{what}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--data" => a.data = value()?,
            "--optimizer" => a.optimizer = value()?,
            "--schedule" => a.schedule = Some(value()?),
            "--epochs" => a.epochs = number(value()?, "--epochs")? as usize,
            "--batch-size" => a.batch_size = number(value()?, "--batch-size")? as usize,
            "--seed" => a.seed = number(value()?, "--seed")? as u64,
            "--clip-norm" => a.clip_norm = Some(number(value()?, "--clip-norm")?),
            other => {
                return Err(format!(
                    "unknown flag `{other}` (see the example's doc comment)"
                ))
            }
        }
    }
    if a.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    Ok(a)
}

/// The model: three `candle_nn::linear` layers, named fc1..fc3 so that
/// `CandleOptimizer::from_varmap` sees fc1 as the input layer, fc2 as
/// hidden and fc3 as the output layer.
struct Mlp {
    layers: Vec<candle_nn::Linear>,
}

impl Mlp {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        let sizes = [784, 512, 256, 10];
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| candle_nn::linear(w[0], w[1], vb.pp(format!("fc{}", i + 1))))
            .collect::<candle_core::Result<_>>()?;
        Ok(Mlp { layers })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

/// candle's AdamW or downhill's optimiser, behind one interface.
enum Opt {
    Candle(AdamW),
    Downhill(Box<CandleOptimizer>),
}

impl Opt {
    fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        match self {
            Opt::Candle(o) => o.backward_step(loss),
            Opt::Downhill(o) => o.backward_step(loss),
        }
    }
    fn learning_rate(&self) -> f64 {
        match self {
            Opt::Candle(o) => o.learning_rate(),
            Opt::Downhill(o) => o.learning_rate(),
        }
    }
    fn epoch_end(&mut self, metric: f64) -> candle_core::Result<()> {
        match self {
            Opt::Candle(_) => Ok(()),
            Opt::Downhill(o) => o.epoch_end(Some(metric)),
        }
    }
}

/// Rows `rows` of a data set as a batch of tensors.
fn batch(
    d: &downhill_data::Dataset,
    rows: &[usize],
    x: &mut Vec<f32>,
    y: &mut Vec<u32>,
) -> Result<(Tensor, Tensor), Box<dyn std::error::Error>> {
    x.resize(rows.len() * d.dim(), 0.0);
    y.resize(rows.len(), 0);
    d.gather_dense(rows, x, y)?;
    let xs = Tensor::from_slice(x, (rows.len(), d.dim()), &Device::Cpu)?;
    let ys = Tensor::from_slice(y, rows.len(), &Device::Cpu)?;
    Ok((xs, ys))
}

/// Mean loss and accuracy over a whole data set, in batches of 1,000.
fn evaluate(
    model: &Mlp,
    d: &downhill_data::Dataset,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (mut loss, mut correct) = (0.0, 0usize);
    let rows: Vec<usize> = (0..d.len()).collect();
    for chunk in rows.chunks(1000) {
        let (xs, ys) = batch(d, chunk, &mut x, &mut y)?;
        let logits = model.forward(&xs)?;
        loss += f64::from(candle_nn::loss::cross_entropy(&logits, &ys)?.to_scalar::<f32>()?)
            * chunk.len() as f64;
        let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        correct += pred.iter().zip(&y).filter(|(p, t)| p == t).count();
    }
    Ok((loss / d.len() as f64, correct as f64 / d.len() as f64))
}

/// Sets the model's weights to the ones `downhill train --model mlp:512,256
/// --seed SEED` starts from (its seeded He/Glorot initialisation, biases
/// zero): candle-core 0.11 cannot seed its CPU generator, and this way both
/// runs start from the same point. downhill's engine stores a dense weight
/// as (in, out); candle's `Linear` holds (out, in), so each is transposed.
fn same_init_as_downhill_train(
    varmap: &VarMap,
    seed: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let spec: downhill_nn::ModelSpec = "mlp:512,256".parse()?;
    let net =
        downhill_nn::Network::<f32>::new(&spec, downhill_nn::InputShape::Flat(784), 10, seed)?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| "the VarMap's lock is poisoned")?;
    for t in net.tensors() {
        let values = &net.params()[t.offset..t.offset + t.len];
        let name = &t.name;
        let var = data.get(name).ok_or_else(|| {
            format!(
                "downhill's tensor {} has no var {name} in the model",
                t.name
            )
        })?;
        let value = Tensor::from_slice(values, t.shape.as_slice(), &Device::Cpu)?;
        let value = if t.shape.len() == 2 {
            value.t()?.contiguous()?
        } else {
            value
        };
        var.set(&value)?;
    }
    Ok(())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let data = downhill_data::load(&args.data, &downhill_data::LoadOptions::default())?;
    let test = data
        .test
        .as_ref()
        .ok_or_else(|| format!("{}: no test split", args.data))?;
    let varmap = VarMap::new();
    let model = Mlp::new(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    same_init_as_downhill_train(&varmap, args.seed)?;
    let mut opt = if args.optimizer.eq_ignore_ascii_case("candle_nn::AdamW") {
        Opt::Candle(AdamW::new(varmap.all_vars(), ParamsAdamW::default())?)
    } else {
        let mut cfg: Config = args.optimizer.parse()?;
        if let Some(c) = args.clip_norm {
            cfg = cfg.clip_norm(c);
        }
        if let Some(s) = &args.schedule {
            // Per epoch, as `downhill train` steps schedules by default.
            cfg = cfg
                .with_schedule(s)?
                .schedule_unit(downhill_candle::ScheduleUnit::Epoch);
        }
        let opt = CandleOptimizer::from_varmap(&varmap, cfg)?;
        for line in opt.assignment() {
            println!("  {line}");
        }
        Opt::Downhill(Box::new(opt))
    };
    println!(
        "{} on {} ({} train, {} test), batch {}, {} threads",
        args.optimizer,
        args.data,
        data.train.len(),
        test.len(),
        args.batch_size,
        candle_core::utils::get_num_threads()
    );
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for epoch in 0..args.epochs {
        let order = downhill_train::epoch_order(args.seed, epoch, data.train.len());
        let (mut sum, mut steps, mut seconds) = (0.0, 0usize, 0.0);
        for rows in order.chunks(args.batch_size) {
            let (xs, ys) = batch(&data.train, rows, &mut x, &mut y)?;
            let start = Instant::now();
            let loss = candle_nn::loss::cross_entropy(&model.forward(&xs)?, &ys)?;
            opt.backward_step(&loss)?;
            seconds += start.elapsed().as_secs_f64();
            sum += f64::from(loss.to_scalar::<f32>()?);
            steps += 1;
        }
        let train_loss = sum / steps as f64;
        let (test_loss, accuracy) = evaluate(&model, test)?;
        println!(
            "epoch {:>3}  train_loss {train_loss:.4}  test_loss {test_loss:.4}  test_accuracy {:.2}%  lr {:.3e}  step {:.2} ms",
            epoch + 1,
            accuracy * 100.0,
            opt.learning_rate(),
            seconds / steps as f64 * 1e3
        );
        opt.epoch_end(train_loss)?;
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fashion_mnist: {e}");
        std::process::exit(2);
    }
}
