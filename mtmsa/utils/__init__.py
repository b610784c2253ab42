"""What every part of mtmsa shares: image value ranges and the mask convention (:mod:`~mtmsa.utils.images`),
user errors and how commands report them (:mod:`~mtmsa.utils.errors`, :mod:`~mtmsa.utils.cli`), atomic file
writes (:mod:`~mtmsa.utils.files`) and the config resolvers (:mod:`~mtmsa.utils.config`)."""
