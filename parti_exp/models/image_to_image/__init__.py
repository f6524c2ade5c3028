"""Image-to-image models: pix2pix (paired, ``pix2pix.py``) and CycleGAN (unpaired, ``cyclegan.py``), what they share
(``translator.py``), the tasks that make a paired model's inputs (``tasks.py``) and CycleGAN's pool of fakes."""
