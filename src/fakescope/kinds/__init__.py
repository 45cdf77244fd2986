"""Kinds of model below the `Detector`, one module each, chosen by the config's `format`.

- `network`: one network with its input rule (`resize`: a thumbnail; `tiles`: crops at the
  image's own scale, aggregated) -- `fakescope-model/1`, and any config without `format`;
- `fusion`: a tile network and a head on frozen CLIP features, combined -- `fakescope-fusion/1`;
- `route`: other models, each for a range of image sizes -- `fakescope-route/1`.

They share one small interface (`base.Kind`): `prepare` an opened image into model input,
`logits` for several prepared images, `member` for an image size, `describe`, and
`explanation` (a map of what the pixels show). `load.load_kind` picks the class from the
format. Nothing above this package and `fakescope.detector` asks which kind a model is.

This package re-exports nothing: its modules import each other directly (no circles).
"""
