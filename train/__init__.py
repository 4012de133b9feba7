"""`upscale-train`: train super-resolution CNNs with PyTorch (installed as `upscale.train`)."""
