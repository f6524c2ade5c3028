"""Captions for text-to-image: where they come from (``sources.py``; written from class labels, ``labels.py``),
the captioned datasets (a folder of captioned images, COCO, both on ``base.py``) and the digit-scenes benchmark
(``digit_scenes.py``, its captions and specs)."""
