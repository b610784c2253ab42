"""Pictures: titled grids of images, masks and sketches (:mod:`~mtmsa.visualization.grids`), temperature and
attention maps with their colour bars (:mod:`~mtmsa.visualization.attention_maps`) and the pictures of the
training data (:mod:`~mtmsa.visualization.data_pictures`)."""
