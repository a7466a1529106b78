//! Training on ONNX Runtime, ONNX export and quantization.
