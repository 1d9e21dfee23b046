//! `api`: the HTTP API and the pieces the `trx-energy` binary composes.
