//! `tron-adapter`: TRON protocol, node client, key vault, chain workers and the chain simulator.
