//! Damaged or unsupported ONNX files give typed errors, never a panic.

mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use feedbacknet_onnx::{OnnxError, OnnxNetwork};
use onnx_ir::{Message, ModelProto};

fn squeezenet_bytes() -> Vec<u8> {
    std::fs::read(common::model("squeezenet1.1.onnx")).expect("shared model")
}

/// `bytes` written to a file `name` in a fresh temporary folder (removed with the guard).
fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn edited(edit: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let mut model = ModelProto::parse_from_bytes(&squeezenet_bytes()).unwrap();
    edit(&mut model);
    model.write_to_bytes().unwrap()
}

#[test]
fn missing_file_is_an_io_error() {
    let err = OnnxNetwork::load("/nonexistent/model.onnx", &Device::flex()).unwrap_err();
    assert!(matches!(err, OnnxError::Io { .. }), "{err}");
}

#[test]
fn empty_file_is_rejected() {
    let (_tmp, path) = temp_file("empty.onnx", &[]);
    let err = OnnxNetwork::load(&path, &Device::flex()).unwrap_err();
    assert!(matches!(err, OnnxError::Empty { .. }), "{err}");
}

#[test]
fn truncated_and_garbage_files_are_parse_errors() {
    let bytes = squeezenet_bytes();
    let err = OnnxNetwork::from_bytes(&bytes[..bytes.len() / 3], &Device::flex()).unwrap_err();
    assert!(matches!(err, OnnxError::Parse { .. }), "{err}");
    let err = OnnxNetwork::from_bytes(b"this is not a protobuf", &Device::flex()).unwrap_err();
    assert!(
        matches!(err, OnnxError::Parse { .. } | OnnxError::InvalidGraph(_)),
        "{err}"
    );
}

#[test]
fn unsupported_operator_names_the_operator_and_the_node() {
    let bytes = edited(|m| {
        // The second node is the first Relu; make it an operator we do not run.
        m.graph.as_mut().unwrap().node[1].op_type = "Sin".into();
    });
    let err = OnnxNetwork::from_bytes(&bytes, &Device::flex()).unwrap_err();
    match &err {
        OnnxError::UnsupportedOperator { op, node } => {
            assert_eq!(op, "Sin");
            assert!(node.starts_with("sin"), "node name {node}");
        }
        other => panic!("expected UnsupportedOperator, got {other}"),
    }
    assert!(err.to_string().contains("Sin"));
}

#[test]
fn nan_weights_are_rejected() {
    let bytes = edited(|m| {
        let init = &mut m.graph.as_mut().unwrap().initializer[0];
        let mut raw = init.raw_data.to_vec();
        raw[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        init.raw_data = bytes::Bytes::from(raw);
    });
    let err = OnnxNetwork::from_bytes(&bytes, &Device::flex()).unwrap_err();
    assert!(matches!(err, OnnxError::NonFiniteWeights { .. }), "{err}");
}

#[test]
fn a_huge_declared_input_is_refused_before_any_allocation() {
    let bytes = edited(|m| {
        let input = &mut m.graph.as_mut().unwrap().input[0];
        let tensor = input.type_.as_mut().unwrap().mut_tensor_type();
        for d in &mut tensor.shape.as_mut().unwrap().dim[2..] {
            d.set_dim_value(100_000);
        }
    });
    let err = OnnxNetwork::from_bytes(&bytes, &Device::flex()).unwrap_err();
    assert!(matches!(err, OnnxError::InvalidGraph(_)), "{err}");
    assert!(err.to_string().contains("100000x100000"), "{err}");
}
