"""Pretrained weights: the catalogue, downloads from the Hugging Face Hub, custom and installed G/D pairs.

- ``catalogue``: what can be downloaded (``assets/pretrains.json``), and where a catalogue pair lands;
- ``download``: fetching from the Hub (asked again while it cannot be reached), checked before
  anything is moved into place (``checks``); ``hub_errors`` words the Hub's failures;
- ``custom``: G/D files a user brings, checked against the v2 model;
- ``pairs``: every installed pair and its sample rate, for every place that offers pretrains.

Layout under the assets folder:

``pretrained_v2/<id>/<32k|40k|48k>/G.pth`` and ``D.pth``
    one installed pair: a catalogue download (``<id>`` is the catalogue id) or a custom pair
    added with :func:`rvc.pretrained.custom.add_custom_pair`; ``source.json`` beside them says
    where it came from.
``pretrained_v2/f0G40k.pth`` + ``f0D40k.pth`` (any ``...G...<rate>...`` / ``...D...`` names, at any depth)
    files a user copied in by hand, RVC-style; listed when both halves are there.
``.downloads/``
    Hugging Face downloads in progress; a finished, checked file is moved into place atomically.
"""
