"""Training: a config (`config`: presets + flags), the data of a run (`runs`), the loop (`loop`:
fit, validate, checkpoints, early stopping), GPU-side augmentation (`augment`), torchrun helpers
(`distributed`) and the Optuna search (`tune`). A run ends in a model folder
(`fakescope.model_dir.save_model`). The modules import each other directly; this package
re-exports nothing."""
