"""motif Studio: a localhost web page to generate, see, hear and download music from the registry.

How it connects to the rest of motif:

* :mod:`studio.catalog` lists what ``modeling.registry`` holds (every registered variant, its
  versions and aliases, the run's eval metrics and the example set / data version it was trained
  on) and pins a user's choice to one registered version.
* :mod:`studio.validation` turns the page's form (and an uploaded MIDI primer) into a
  ``modeling.generate.Request``, with the Studio's caps; :mod:`studio.inputs` reads what only
  the page has (typed notes, uploads, histogram sliders), and every problem becomes a
  :class:`~studio.fields.FieldError` naming the control that caused it (:mod:`studio.fields`
  maps generation's errors onto controls by their field).
* :mod:`studio.jobs` loads registry models only (``modeling.generate.load_model`` ->
  ``registry.load_generator_model``, ``weights_only``), runs ``modeling.generate.generate`` on one
  worker thread with progress, renders with ``modeling.generate.write_outputs`` /
  ``modeling.render`` and keeps the bytes in memory.
* :mod:`studio.server` is the FastAPI app serving one static page (``studio/static``) and a JSON
  API; ``python -m studio --port 8501`` (``make studio``) starts it on 127.0.0.1.
"""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
