//! Model spec parsing: accepted forms, canonical printing, and errors that name the token.

use downhill_nn::{Activation, Init, LossKind, ModelKind, ModelSpec, NnError, PoolSpec};

fn parse(s: &str) -> ModelSpec {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn bad_token(s: &str) -> String {
    match s.parse::<ModelSpec>() {
        Err(NnError::Spec { token, .. }) => token,
        other => panic!("{s}: expected a spec error, got {other:?}"),
    }
}

#[test]
fn defaults_of_each_kind() {
    let l = parse("logreg");
    assert_eq!(l.kind, ModelKind::Logreg);
    assert_eq!(
        (l.loss, l.binary, l.activation),
        (LossKind::CrossEntropy, false, Activation::Relu)
    );
    let b = parse("logreg:binary");
    assert_eq!((b.loss, b.binary), (LossKind::Logistic, true));
    assert_eq!(
        parse("mlp:1000,1000").kind,
        ModelKind::Mlp {
            hidden: vec![1000, 1000]
        }
    );
    match parse("cnn").kind {
        ModelKind::Cnn {
            channels,
            kernel,
            stride,
            padding,
            pool,
            fc,
        } => {
            assert_eq!(channels, vec![64, 64, 128]);
            assert_eq!((kernel, stride, padding, fc), ((5, 5), 1, None, 1000));
            assert_eq!(
                pool,
                PoolSpec {
                    window: 3,
                    stride: 2,
                    padding: 0
                }
            );
        }
        k => panic!("{k:?}"),
    }
    match parse("cnn:32,32,64:pool=2").kind {
        ModelKind::Cnn { channels, pool, .. } => {
            assert_eq!(channels, vec![32, 32, 64]);
            assert_eq!(
                pool,
                PoolSpec {
                    window: 2,
                    stride: 2,
                    padding: 0
                }
            );
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn options() {
    let s = parse("mlp:100:tanh:dropout=0.5:input-dropout=0.2:l2=0.001:init=glorot:loss=mse");
    assert_eq!(s.activation, Activation::Tanh);
    assert_eq!((s.dropout, s.input_dropout, s.l2), (0.5, 0.2, 0.001));
    assert_eq!(
        (s.init, s.loss),
        (Some(Init::Glorot), LossKind::SquaredError)
    );
    match parse("cnn:8:kernel=3x5:stride=2:pad=1:pool=3/2/1:fc=0:sigmoid").kind {
        ModelKind::Cnn {
            kernel,
            stride,
            padding,
            pool,
            fc,
            ..
        } => {
            assert_eq!((kernel, stride, padding, fc), ((3, 5), 2, Some((1, 1)), 0));
            assert_eq!(
                pool,
                PoolSpec {
                    window: 3,
                    stride: 2,
                    padding: 1
                }
            );
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn display_round_trips() {
    for s in [
        "logreg",
        "logreg:binary",
        "logreg:binary:loss=mse",
        "mlp:1000,1000",
        "mlp:1000,1000:tanh:dropout=0.5:input-dropout=0.2",
        "mlp:3:sigmoid:loss=mse:l2=0.01:init=he",
        "cnn:64,64,128",
        "cnn:32,32,64:pool=2/2/0",
        "cnn:8,16:kernel=3x5:stride=2:pad=1:pool=3/2/1:fc=0",
    ] {
        let spec = parse(s);
        assert_eq!(spec.to_string(), s);
        assert_eq!(parse(&spec.to_string()), spec);
    }
}

#[test]
fn errors_name_the_token() {
    assert_eq!(bad_token("resnet"), "resnet");
    assert_eq!(bad_token("mlp"), "mlp");
    assert_eq!(bad_token("mlp:1000,x"), "1000,x");
    assert_eq!(bad_token("mlp:0"), "0");
    assert_eq!(bad_token("mlp:10:dropout=1"), "dropout=1");
    assert_eq!(bad_token("mlp:10:dropout=-0.1"), "dropout=-0.1");
    assert_eq!(bad_token("mlp:10:input-dropout=abc"), "input-dropout=abc");
    assert_eq!(bad_token("logreg:l2=-1"), "l2=-1");
    assert_eq!(bad_token("logreg:loss=hinge"), "loss=hinge");
    assert_eq!(bad_token("logreg:init=orthogonal"), "init=orthogonal");
    assert_eq!(bad_token("logreg:wat"), "wat");
    assert_eq!(bad_token("mlp:10:kernel=3"), "kernel=3");
    assert_eq!(bad_token("cnn:kernel=0"), "kernel=0");
    assert_eq!(bad_token("cnn:kernel=3x"), "kernel=3x");
    assert_eq!(bad_token("cnn:pool=3/2/2"), "pool=3/2/2");
    assert_eq!(bad_token("cnn:pool=2/1/0/1"), "pool=2/1/0/1");
    assert_eq!(bad_token("cnn:32,,64"), "32,,64");
    assert_eq!(bad_token("mlp:10:tanh:relu"), "relu");
    assert_eq!(bad_token("logreg:loss=logistic"), "loss=logistic");
    assert_eq!(bad_token("logreg:binary:loss=ce"), "loss=ce");
    let msg = "mlp:10:dropout=2"
        .parse::<ModelSpec>()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`dropout=2`") && msg.contains("[0, 1)"),
        "{msg}"
    );
}
