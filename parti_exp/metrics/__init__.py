"""Image-quality metrics: FID, IS and KID through torchmetrics, precision / recall / density / coverage
(``prdc.py``) and, with a classifier, the per-class share of generated images (``class_share.py``), in
torch-fidelity's InceptionV3 feature space (``metrics=inception``) or in a small digit classifier's
(``metrics=classifier``), computed at the end of validation epochs by one Lightning callback (``image_quality.py``)
and by ``python -m parti_exp.evaluate``."""
