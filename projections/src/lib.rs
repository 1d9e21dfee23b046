//! `projections`: the projector runtime and the read models built from the global event log.
