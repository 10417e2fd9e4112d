//! Sizes from the caller that overflow when multiplied are refused as errors:
//! no wrapped size ever reaches a buffer or the matrix-product backend.

use downhill::Rng;
use downhill_nn::{Input, InputShape, ModelSpec, Network, NnError};

#[test]
fn a_dense_batch_whose_rows_times_dim_wraps_is_refused() {
    for spec in ["logreg", "mlp:8", "mlp:8,4:tanh"] {
        let spec: ModelSpec = spec.parse().unwrap();
        let mut net = Network::<f32>::new(&spec, InputShape::Flat(4), 3, 1).unwrap();
        let values = [0.5f32; 8];
        // rows·dim = (2 + 2^62)·4 = 8 + 2^64, which wraps to values.len().
        for rows in [2 + (1usize << 62), usize::MAX / 4 + 3] {
            assert_eq!(rows.wrapping_mul(4), values.len());
            let x = Input::Dense {
                values: &values,
                rows,
                dim: 4,
            };
            let err = net.logits(x).map(|_| ()).unwrap_err();
            assert!(matches!(err, NnError::Batch(_)), "{err}");
            let err = net.evaluate(x, &[0, 1]).unwrap_err();
            assert!(matches!(err, NnError::Batch(_)), "{err}");
            let err = net.loss_and_grad(x, &[0, 1], &mut Rng::new(1)).unwrap_err();
            assert!(matches!(err, NnError::Batch(_)), "{err}");
        }
        // The same network still takes a well-formed batch.
        let x = Input::Dense {
            values: &values,
            rows: 2,
            dim: 4,
        };
        assert_eq!(net.logits(x).unwrap().len(), 6);
    }
}
