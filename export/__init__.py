"""`upscale-export`: turn models into self-describing ONNX files that follow `upscale.contract`."""
