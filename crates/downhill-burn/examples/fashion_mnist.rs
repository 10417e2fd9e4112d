//! A burn MLP (784-512-256-10, ReLU) trained on Fashion-MNIST with any
//! downhill optimiser spec, through `downhill_burn::BurnOptimizer`.
//!
//! ```text
//! cargo run --release --manifest-path crates/downhill-burn/Cargo.toml --example fashion_mnist -- \
//!     [--backend flex|ndarray|wgpu] [--data builtin:fashion-mnist-small | --data idx:DIR] \
//!     [--optimizer SPEC | --optimizer burn::AdamW] [--schedule SPEC] \
//!     [--epochs 10] [--batch-size 128] [--seed 0] [--clip-norm F]
//! ```
//!
//! The data are read by `downhill-data` (the embedded 6,000/1,000-image
//! subset by default, or the IDX files of the full set), pixels scaled to
//! [0, 1]; the initial weights and the epoch order are those of `downhill
//! train --model mlp:512,256 --seed SEED` (`downhill_nn::Network::new`,
//! `downhill_train::epoch_order`), so the run sits next to `downhill train`
//! on the same model, data and starting point. `--optimizer burn::AdamW`
//! trains with burn's own `AdamWConfig` (torch's defaults: ε = 1e-8, weight
//! decay 0.01), for comparison. `--backend wgpu` needs the crate's `wgpu`
//! feature. Each epoch prints the training loss, the test loss and
//! accuracy, and the mean time of a whole training step (forward, backward,
//! optimiser).

use burn::module::{Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{activation::relu, Device, Int, Tensor, TensorData};
use downhill_burn::{BurnOptimizer, Config};
use std::time::Instant;

/// The command line.
struct Args {
    backend: String,
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
        backend: "flex".into(),
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
            "--backend" => a.backend = value()?,
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

fn device(backend: &str) -> Result<Device, String> {
    match backend {
        "flex" => Ok(Device::flex()),
        #[allow(deprecated)] // burn 0.22 deprecates ndarray; it is still used
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err("--backend wgpu: build the example with `--features wgpu`".into()),
        other => Err(format!(
            "--backend: `{other}`, expected flex, ndarray or wgpu"
        )),
    }
}

/// The model: three burn `Linear` layers, named fc1..fc3 so that the
/// adapter sees fc1 as the input layer, fc2 as hidden and fc3 as the output.
#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Mlp {
    /// The weights `downhill train --model mlp:512,256 --seed SEED` starts
    /// from (its seeded He/Glorot initialisation, biases zero). downhill's
    /// engine and burn's `Linear` both store a dense weight as (in, out).
    fn same_init_as_downhill_train(
        device: &Device,
        seed: u64,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let spec: downhill_nn::ModelSpec = "mlp:512,256".parse()?;
        let net =
            downhill_nn::Network::<f32>::new(&spec, downhill_nn::InputShape::Flat(784), 10, seed)?;
        let mut values = std::collections::HashMap::new();
        for t in net.tensors() {
            let v = net.params()[t.offset..t.offset + t.len].to_vec();
            values.insert(t.name.clone(), (v, t.shape.clone()));
        }
        let mut layer = |name: &str, d_in: usize, d_out: usize| -> Result<Linear, String> {
            let mut l = LinearConfig::new(d_in, d_out).init(device);
            let (w, ws) = values
                .remove(&format!("{name}.weight"))
                .ok_or_else(|| format!("downhill's network has no {name}.weight"))?;
            let (b, bs) = values
                .remove(&format!("{name}.bias"))
                .ok_or_else(|| format!("downhill's network has no {name}.bias"))?;
            l.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, ws), device));
            l.bias = Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(b, bs),
                device,
            )));
            Ok(l)
        };
        Ok(Mlp {
            fc1: layer("fc1", 784, 512)?,
            fc2: layer("fc2", 512, 256)?,
            fc3: layer("fc3", 256, 10)?,
        })
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = relu(self.fc1.forward(x));
        let h = relu(self.fc2.forward(h));
        self.fc3.forward(h)
    }
}

/// burn's AdamW or downhill's optimiser, behind one interface.
enum Opt {
    Burn(ModuleOptimizer),
    Downhill(Box<BurnOptimizer>),
}

impl Opt {
    fn step(&mut self, model: Mlp, grads: GradientsParams) -> Result<Mlp, downhill_burn::Error> {
        match self {
            Opt::Burn(o) => Ok(o.step(1e-3, model, grads)),
            Opt::Downhill(o) => o.step(model, grads),
        }
    }
    fn epoch_end(&mut self, metric: f64) -> Result<(), downhill_burn::Error> {
        match self {
            Opt::Burn(_) => Ok(()),
            Opt::Downhill(o) => o.epoch_end(Some(metric)),
        }
    }
}

/// Rows `rows` of a data set as a batch of tensors.
fn batch(
    d: &downhill_data::Dataset,
    rows: &[usize],
    device: &Device,
) -> Result<(Tensor<2>, Tensor<1, Int>), Box<dyn std::error::Error>> {
    let mut x = vec![0f32; rows.len() * d.dim()];
    let mut y = vec![0u32; rows.len()];
    d.gather_dense(rows, &mut x, &mut y)?;
    let xs = Tensor::from_data(TensorData::new(x, [rows.len(), d.dim()]), device);
    let y: Vec<i64> = y.into_iter().map(i64::from).collect();
    let ys = Tensor::from_data(TensorData::new(y, [rows.len()]), device);
    Ok((xs, ys))
}

/// Mean loss and accuracy over a whole data set, in batches of 1,000.
fn evaluate(
    model: &Mlp,
    d: &downhill_data::Dataset,
    device: &Device,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let model = model.valid();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let (mut loss, mut correct) = (0.0, 0usize);
    let rows: Vec<usize> = (0..d.len()).collect();
    for chunk in rows.chunks(1000) {
        let (xs, ys) = batch(d, chunk, device)?;
        let logits = model.forward(xs);
        let l: f32 = loss_fn
            .forward(logits.clone(), ys.clone())
            .into_scalar::<f32>();
        loss += f64::from(l) * chunk.len() as f64;
        let pred = logits.argmax(1).reshape([chunk.len()]);
        let hits: i64 = pred.equal(ys).int().sum().into_scalar::<i64>();
        correct += hits as usize;
    }
    Ok((loss / d.len() as f64, correct as f64 / d.len() as f64))
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let device = device(&args.backend)?.autodiff();
    let data = downhill_data::load(&args.data, &downhill_data::LoadOptions::default())?;
    let test = data
        .test
        .as_ref()
        .ok_or_else(|| format!("{}: no test split", args.data))?;
    let mut model = Mlp::same_init_as_downhill_train(&device, args.seed)?;
    let mut opt = if args.optimizer.eq_ignore_ascii_case("burn::AdamW") {
        Opt::Burn(
            AdamWConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(0.01)
                .init(),
        )
    } else {
        let mut cfg: Config = args.optimizer.parse()?;
        if let Some(c) = args.clip_norm {
            cfg = cfg.clip_norm(c);
        }
        if let Some(s) = &args.schedule {
            // Per epoch, as `downhill train` steps schedules by default.
            cfg = cfg
                .with_schedule(s)?
                .schedule_unit(downhill_burn::ScheduleUnit::Epoch);
        }
        Opt::Downhill(Box::new(BurnOptimizer::new(cfg)?))
    };
    println!(
        "{} on {} ({} train, {} test), batch {}, backend {}",
        args.optimizer,
        args.data,
        data.train.len(),
        test.len(),
        args.batch_size,
        args.backend
    );
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    for epoch in 0..args.epochs {
        let order = downhill_train::epoch_order(args.seed, epoch, data.train.len());
        let (mut sum, mut steps, mut seconds) = (0.0, 0usize, 0.0);
        for rows in order.chunks(args.batch_size) {
            let (xs, ys) = batch(&data.train, rows, &device)?;
            let start = Instant::now();
            let loss = loss_fn.forward(model.forward(xs), ys);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = opt.step(model, grads)?;
            let l: f32 = loss.into_scalar::<f32>();
            seconds += start.elapsed().as_secs_f64();
            sum += f64::from(l);
            steps += 1;
        }
        if epoch == 0 {
            if let Opt::Downhill(o) = &opt {
                println!("  path: {:?}", o.path().expect("stepped"));
            }
        }
        let train_loss = sum / steps as f64;
        let (test_loss, accuracy) = evaluate(&model, test, &device.clone().inner())?;
        println!(
            "epoch {:>3}  train_loss {train_loss:.4}  test_loss {test_loss:.4}  test_accuracy {:.2}%  step {:.2} ms",
            epoch + 1,
            accuracy * 100.0,
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
