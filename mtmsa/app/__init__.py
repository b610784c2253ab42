"""The sketch-guided editor: a browser page and ``POST /api/inpaint`` served together by ``mtmsa-app --checkpoint C``
(= ``python -m mtmsa.app``). :mod:`~mtmsa.app.engine` runs the model (one worker, a bounded queue),
:mod:`~mtmsa.app.api` answers the API, :mod:`~mtmsa.app.page` is the Gradio page, :mod:`~mtmsa.app.server` puts
them in one server. Needs the ``app`` extra (``pip install 'mtmsa[app]'``)."""
