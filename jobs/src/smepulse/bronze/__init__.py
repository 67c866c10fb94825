"""Bronze: the documented input contract, its object store, the synthetic generator and the
``validate-bronze`` stage."""
