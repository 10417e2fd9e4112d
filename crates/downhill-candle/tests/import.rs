//! A model trained by `downhill train` runs in candle-nn layers and gives
//! the test accuracy downhill measured, image for image.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use downhill_train::{Silent, TrainConfig, Trainer};

#[test]
fn a_trained_downhill_mlp_reproduces_its_test_accuracy_in_candle() {
    let out = std::env::temp_dir().join(format!("downhill-candle-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cfg = TrainConfig {
        model: "mlp:128,64".into(),
        epochs: 2,
        threads: Some(2),
        ..TrainConfig::default()
    };
    let data = downhill_data::load(&cfg.data, &cfg.load_options().unwrap()).unwrap();
    let test = data.test.clone().unwrap();
    let summary = Trainer::with_data(cfg, data, Some(out.clone()))
        .unwrap()
        .run(&mut Silent)
        .unwrap();
    let theirs = summary.last.unwrap().test_accuracy.unwrap();

    // The last checkpoint's model, as a user finds it.
    let (dir, _, _) = downhill_train::checkpoint::latest_trainer_state(&out).unwrap();
    let tensors =
        downhill_candle::load_downhill_model(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(
        tensors["fc1.weight"].dims(),
        [128, 784],
        "candle's (out, in)"
    );
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let layers: Vec<candle_nn::Linear> = [(784, 128), (128, 64), (64, 10)]
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| candle_nn::linear(a, b, vb.pp(format!("fc{}", i + 1))).unwrap())
        .collect();
    let rows: Vec<usize> = (0..test.len()).collect();
    let (mut x, mut y) = (vec![0f32; rows.len() * 784], vec![0u32; rows.len()]);
    test.gather_dense(&rows, &mut x, &mut y).unwrap();
    let mut h = Tensor::from_vec(x, (rows.len(), 784), &Device::Cpu).unwrap();
    for (i, l) in layers.iter().enumerate() {
        h = l.forward(&h).unwrap();
        if i + 1 < layers.len() {
            h = h.relu().unwrap();
        }
    }
    let pred = h.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
    let correct = pred.iter().zip(&y).filter(|(p, t)| p == t).count();
    let ours = correct as f64 / rows.len() as f64;
    println!(
        "downhill {theirs}, candle {ours} on {} test images",
        rows.len()
    );
    assert_eq!(ours, theirs);
    assert!(ours > 0.75, "{ours}: the model learned");

    // A safetensors file without downhill's metadata is refused.
    let plain = out.join("plain.safetensors");
    candle_core::safetensors::save(
        &[(
            "w".to_string(),
            Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
        )]
        .into_iter()
        .collect(),
        &plain,
    )
    .unwrap();
    let e = downhill_candle::load_downhill_model(&plain, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no `downhill` metadata"), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_convolutional_model_is_refused_rather_than_misread() {
    let out =
        std::env::temp_dir().join(format!("downhill-candle-import-cnn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let cfg = TrainConfig {
        model: "cnn:4".into(),
        epochs: 1,
        threads: Some(1),
        ..TrainConfig::default()
    };
    // Building the run writes the initial model; no training is needed.
    Trainer::new(cfg, Some(out.clone())).unwrap();
    let e = downhill_candle::load_downhill_model(out.join("init.safetensors"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv1.weight is a convolution kernel"), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}
