//! A model trained by `downhill train` runs in candle-nn layers and gives
//! the test accuracy downhill measured, image for image.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use downhill_train::{Silent, TrainConfig, Trainer};
use std::collections::HashMap;
use std::path::Path;

/// `downhill export`'s file holds exactly the tensors, names and shapes the
/// candle loader builds (which reproduce downhill's test accuracy in the
/// tests below), so candle's and torch's own loaders take it as it is.
fn export_matches(run: &Path, tensors: &HashMap<String, Tensor>) {
    let file = run.join("exported.safetensors");
    downhill_train::export::export_torch(run, &file).unwrap();
    let exported = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    assert_eq!(exported.len(), tensors.len());
    for (name, t) in tensors {
        let e = &exported[name];
        assert_eq!(e.dims(), t.dims(), "{name}");
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(e), values(t), "{name}");
    }
}

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
    export_matches(&out, &tensors);
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
fn a_trained_downhill_cnn_reproduces_its_test_accuracy_in_candle() {
    let out =
        std::env::temp_dir().join(format!("downhill-candle-import-cnn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // Two 5x5 "same" convolutions (4 and 8 channels), each with ReLU and a
    // 3x3 max-pool of stride 2 (28 -> 13 -> 6), a 32-unit dense layer.
    let cfg = TrainConfig {
        model: "cnn:4,8:fc=32".into(),
        epochs: 1,
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
    let (dir, _, _) = downhill_train::checkpoint::latest_trainer_state(&out).unwrap();
    let tensors =
        downhill_candle::load_downhill_model(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    export_matches(&out, &tensors);
    assert_eq!(
        tensors["conv1.weight"].dims(),
        [4, 1, 5, 5],
        "candle's (out, in, kh, kw)"
    );
    assert_eq!(tensors["fc1.weight"].dims(), [32, 8 * 6 * 6]);
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let conv = candle_nn::Conv2dConfig {
        padding: 2,
        ..Default::default()
    };
    let c1 = candle_nn::conv2d(1, 4, 5, conv, vb.pp("conv1")).unwrap();
    let c2 = candle_nn::conv2d(4, 8, 5, conv, vb.pp("conv2")).unwrap();
    let f1 = candle_nn::linear(288, 32, vb.pp("fc1")).unwrap();
    let f2 = candle_nn::linear(32, 10, vb.pp("fc2")).unwrap();
    let rows: Vec<usize> = (0..test.len()).collect();
    let (mut x, mut y) = (vec![0f32; rows.len() * 784], vec![0u32; rows.len()]);
    test.gather_dense(&rows, &mut x, &mut y).unwrap();
    // One channel: downhill's HWC rows are candle's CHW images.
    let x = Tensor::from_vec(x, (rows.len(), 1, 28, 28), &Device::Cpu).unwrap();
    let h = c1
        .forward(&x)
        .unwrap()
        .relu()
        .unwrap()
        .max_pool2d_with_stride(3, 2)
        .unwrap();
    let h = c2
        .forward(&h)
        .unwrap()
        .relu()
        .unwrap()
        .max_pool2d_with_stride(3, 2)
        .unwrap();
    let h = f1
        .forward(&h.flatten_from(1).unwrap())
        .unwrap()
        .relu()
        .unwrap();
    let logits = f2.forward(&h).unwrap();
    let pred = logits.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
    let correct = pred.iter().zip(&y).filter(|(p, t)| p == t).count();
    let ours = correct as f64 / rows.len() as f64;
    println!(
        "CNN: downhill {theirs}, candle {ours} on {} test images",
        rows.len()
    );
    assert_eq!(ours, theirs);
    assert!(ours > 0.6, "{ours}: the model learned");
    let _ = std::fs::remove_dir_all(&out);
}
