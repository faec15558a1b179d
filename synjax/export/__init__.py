"""Spiking networks out of synjax and back: NIR graphs (:mod:`~synjax.export.to_nir`,
:mod:`~synjax.export.from_nir`) and the ``synjax export`` command (:mod:`~synjax.export.experiment`)."""
